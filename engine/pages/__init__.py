"""Server-rendered web pages (Chinese, usable at 375 px): Jinja2 templates over the service layer.

No build step and nothing from a CDN: the templates, one stylesheet and one small script ship
inside the package (``engine/pages/templates``, ``engine/pages/static``).  Pages are plain HTML
forms; every handler calls the same service functions as the JSON API (``engine.service``), so
the pages decide nothing the API does not.

Modules, one per audience:

* :mod:`engine.pages.render` — the template environment, the page principal, redirects;
* :mod:`engine.pages.session_pages` — login, logout, the home page that sends each role on;
* further modules add the secretary's, the inspector's, the rule admin's and the admin's pages
  and register themselves in :func:`register`.
"""

from __future__ import annotations

from fastapi import FastAPI


def register(api: FastAPI) -> None:
    """Mount the static files and every page router on ``api``."""
    from fastapi.staticfiles import StaticFiles

    from engine.pages import session_pages
    from engine.pages.render import STATIC_DIR

    api.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    session_pages.register(api)
    for module in _page_modules():
        module.register(api)


def _page_modules() -> list:  # type: ignore[type-arg]
    """Page modules beyond the session pages (each has ``register(api)``); add new ones here."""
    from engine.pages import (
        admin_users,
        branch_dues,
        branch_home,
        branch_meetings,
        branch_rectify,
        branch_retract,
        inspect_bulk,
        inspect_dashboard,
        inspect_violation,
        packs_pages,
    )

    return [
        packs_pages,
        branch_home,
        branch_meetings,
        branch_dues,
        branch_retract,
        branch_rectify,
        inspect_dashboard,
        inspect_violation,
        inspect_bulk,
        admin_users,
    ]
