"""The service layer: every operation a user can ask for, authorized and audited.

The CLI and the HTTP API both call these functions; nothing is decided only in a web handler.
"""
