"""Who is calling: API tokens (``Authorization: Bearer``) or session cookies with a CSRF token; login rate limit.

* A session cookie is ``Secure`` (unless the server runs with ``--insecure-cookies``),
  ``HttpOnly`` and ``SameSite=Strict``; its value is random and stored hashed.
* A cookie-authenticated request that changes anything (POST, PUT, PATCH, DELETE) must
  carry the session's CSRF token, as the ``X-CSRF-Token`` header or a ``csrf_token``
  form field; token-authenticated requests need none (a browser never adds them).
* Failed logins are counted per client address and per account name in a sliding
  window; past the limit the login answers 429 with ``Retry-After`` whatever the
  password, so guessing is slow and an account under attack is not locked for its owner
  for longer than the window.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from fastapi import Request, Response

from engine.auth import accounts
from engine.auth.principal import Forbidden, NotAuthenticated, Principal

COOKIE = "partyrules_session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class LoginLimiter:
    """At most ``per_name`` failures per account name and ``per_client`` per address within ``window`` seconds."""

    per_name: int = 5
    per_client: int = 20
    window: float = 300.0
    clock: object = time.monotonic
    _fails: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _now(self) -> float:
        return self.clock()  # type: ignore[operator, no-any-return]

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, client: str, name: str) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = self._now()
        with self._lock:
            waits = []
            for key, limit in (
                (f"n:{accounts.name_key(name)}", self.per_name),
                (f"c:{client}", self.per_client),
            ):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(q[0] + self.window - now)
            return int(max(waits) + 1) if waits else 0

    def failed(self, client: str, name: str) -> None:
        now = self._now()
        with self._lock:
            for key in (f"n:{accounts.name_key(name)}", f"c:{client}"):
                self._recent(key, now).append(now)
            if len(self._fails) > 100_000:  # bounded memory under a flood of names
                self._fails = {k: q for k, q in self._fails.items() if q and q[-1] > now - self.window}


def authenticate(request: Request, form_csrf: str | None = None) -> Principal:
    """The principal of a request (bearer token, else session cookie with CSRF check on unsafe methods)."""
    db = request.app.state.partyrules.db
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return accounts.principal_for_token(db, header[7:].strip())
    sid = request.cookies.get(COOKIE)
    if not sid:
        raise NotAuthenticated("请先登录（会话 Cookie）或提供访问令牌（Authorization: Bearer）")
    principal, csrf = accounts.session_principal(db, sid)
    if request.method in UNSAFE:
        sent = request.headers.get("x-csrf-token") or form_csrf
        if not sent or not secrets.compare_digest(sent, csrf):
            raise Forbidden("缺少或错误的 CSRF 令牌（X-CSRF-Token）")
    return principal


def set_session_cookie(response: Response, request: Request, sid: str) -> None:
    """The session cookie, as every login (API or page) sets it."""
    response.set_cookie(
        COOKIE,
        sid,
        httponly=True,
        samesite="strict",
        secure=request.app.state.secure_cookies,
        max_age=accounts.SESSION_HOURS * 3600,
        path="/",
    )


def xlsx_response(workbook: object, filename: str) -> Response:
    """An openpyxl workbook as an XLSX download named ``filename``."""
    import io

    buf = io.BytesIO()
    workbook.save(buf)  # type: ignore[attr-defined]
    return Response(
        buf.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
