"""The HTTP API (FastAPI): thin handlers over :mod:`engine.service`; authentication, CSRF and rate limits here."""
