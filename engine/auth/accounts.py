"""Accounts (账号): create, list, disable, change password, authenticate; API tokens and web sessions.

Passwords are hashed with argon2id (argon2-cffi); tokens and session ids are random
(``secrets``) and stored as SHA-256 digests, so a copy of the database holds no
credential.  Names are compared after NFKC normalisation and case folding:
"Alice" and "alice" are one account.  Every change is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.audit.log import append
from engine.auth.principal import AuthError, Grant, NotAuthenticated, Principal, parse_grants
from engine.auth.tables import Account, AccountRole, ApiToken, WebSession

_A = Account.__table__  # type: ignore[attr-defined]
_R = AccountRole.__table__  # type: ignore[attr-defined]
_T = ApiToken.__table__  # type: ignore[attr-defined]
_S = WebSession.__table__  # type: ignore[attr-defined]
_HASHER = PasswordHasher()  # argon2id, the library's defaults (RFC 9106 low-memory profile)
_DUMMY = _HASHER.hash("partyrules-dummy")  # verified against for unknown names: same time either way
MIN_PASSWORD = 8
SESSION_HOURS = 12


@dataclass(frozen=True)
class AccountInfo:
    id: int
    name: str
    disabled: bool
    grants: tuple[Grant, ...]
    created_at: dt.datetime


def name_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold().strip()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"a password needs at least {MIN_PASSWORD} characters")


def ensure_tables(db: sa.Engine) -> None:
    for table in (_A, _R, _T, _S):
        table.create(db, checkfirst=True)


def add_user(
    db: sa.Engine,
    actor: Principal,
    name: str,
    roles: list[str],
    password: str | None = None,
    request_id: str | None = None,
) -> AccountInfo:
    """Create an account with grants such as ``["secretary@b1"]``; raises AuthError on a taken name."""
    actor.require("account.manage")
    grants = parse_grants(roles)
    clean = name.strip()
    if not clean:
        raise AuthError("an account needs a name")
    if password is not None:
        _check_password(password)
    now = _now()
    with db.begin() as conn:
        if conn.execute(sa.select(_A.c.id).where(_A.c.name_key == name_key(clean))).first():
            raise AuthError(f"an account named {clean!r} exists already (names ignore case)")
        inserted = conn.execute(
            sa.insert(_A).values(
                name=clean,
                name_key=name_key(clean),
                created_at=now,
                created_by=actor.name,
                password_hash=_HASHER.hash(password) if password is not None else None,
            )
        ).inserted_primary_key
        account_id = int(inserted[0]) if inserted else 0
        for g in grants:
            conn.execute(sa.insert(_R).values(account_id=account_id, role=g.role, org=g.org))
        append(conn, actor.name, "account.add", clean, {"roles": [str(g) for g in grants]}, request_id)
    return AccountInfo(int(account_id), clean, False, tuple(grants), now)


def list_users(db: sa.Engine, actor: Principal) -> list[AccountInfo]:
    actor.require("account.manage")
    with db.connect() as conn:
        grants: dict[int, list[Grant]] = {}
        for r in conn.execute(sa.select(_R.c.account_id, _R.c.role, _R.c.org).order_by(_R.c.id)):
            grants.setdefault(int(r[0]), []).append(Grant(r[1], r[2]))
        rows = conn.execute(sa.select(_A).order_by(_A.c.id)).mappings().all()
    return [
        AccountInfo(
            int(r["id"]), r["name"], bool(r["disabled"]), tuple(grants.get(int(r["id"]), [])), r["created_at"]
        )
        for r in rows
    ]


def _find(conn: sa.Connection, name: str) -> dict | None:  # type: ignore[type-arg]
    row = conn.execute(sa.select(_A).where(_A.c.name_key == name_key(name))).mappings().first()
    return dict(row) if row else None


def _grants(conn: sa.Connection, account_id: int) -> tuple[Grant, ...]:
    rows = conn.execute(sa.select(_R.c.role, _R.c.org).where(_R.c.account_id == account_id).order_by(_R.c.id))
    return tuple(Grant(r[0], r[1]) for r in rows)


def set_disabled(
    db: sa.Engine, actor: Principal, name: str, disabled: bool = True, request_id: str | None = None
) -> None:
    actor.require("account.manage")
    with db.begin() as conn:
        row = _find(conn, name)
        if row is None:
            raise AuthError(f"no account named {name!r}")
        conn.execute(sa.update(_A).where(_A.c.id == row["id"]).values(disabled=disabled))
        if disabled:  # a disabled account's sessions and tokens stop working at once
            conn.execute(sa.delete(_S).where(_S.c.account_id == row["id"]))
        append(
            conn, actor.name, "account.disable" if disabled else "account.enable", row["name"], {}, request_id
        )


def set_password(
    db: sa.Engine, actor: Principal, name: str, password: str, request_id: str | None = None
) -> None:
    """Set ``name``'s password: an admin for anyone, an account for itself."""
    with db.begin() as conn:
        row = _find(conn, name)
        if actor.account_id is None or row is None or row["id"] != actor.account_id:
            actor.require("account.manage")
        if row is None:
            raise AuthError(f"no account named {name!r}")
        _check_password(password)
        conn.execute(sa.update(_A).where(_A.c.id == row["id"]).values(password_hash=_HASHER.hash(password)))
        conn.execute(sa.delete(_S).where(_S.c.account_id == row["id"]))
        append(conn, actor.name, "account.passwd", row["name"], {}, request_id)


def principal_for(db: sa.Engine, name: str) -> Principal:
    """The principal of an existing, enabled account (the CLI's ``--as``, a waiver's approver)."""
    with db.connect() as conn:
        row = _find(conn, name)
        if row is None or row["disabled"]:
            raise AuthError(f"no enabled account named {name!r} (see `partyrules users list`)")
        return Principal(row["name"], int(row["id"]), _grants(conn, int(row["id"])))


def _principal_by_id(conn: sa.Connection, account_id: int) -> Principal | None:
    row = conn.execute(sa.select(_A).where(_A.c.id == account_id)).mappings().first()
    if row is None or row["disabled"]:
        return None
    return Principal(row["name"], int(row["id"]), _grants(conn, int(row["id"])))


def authenticate(db: sa.Engine, name: str, password: str) -> Principal:
    """The principal whose password this is; NotAuthenticated otherwise (the same message whatever was wrong)."""
    with db.connect() as conn:
        row = _find(conn, name)
    stored = row["password_hash"] if row and not row["disabled"] and row["password_hash"] else _DUMMY
    try:
        _HASHER.verify(stored, password)
        good = stored is not _DUMMY
    except (VerificationError, InvalidHashError):
        good = False
    if not good or row is None:
        raise NotAuthenticated("用户名或密码错误")
    if _HASHER.check_needs_rehash(stored):
        with db.begin() as conn:
            conn.execute(
                sa.update(_A).where(_A.c.id == row["id"]).values(password_hash=_HASHER.hash(password))
            )
    return principal_for(db, name)


def create_token(
    db: sa.Engine, actor: Principal, name: str, label: str = "", request_id: str | None = None
) -> str:
    """A new API token for ``name`` (an admin for anyone, an account for itself); shown once, stored hashed."""
    with db.begin() as conn:
        row = _find(conn, name)
        if actor.account_id is None or row is None or row["id"] != actor.account_id:
            actor.require("account.manage")
        if row is None:
            raise AuthError(f"no account named {name!r}")
        token = "prt_" + secrets.token_urlsafe(32)
        conn.execute(
            sa.insert(_T).values(account_id=row["id"], digest=_digest(token), label=label, created_at=_now())
        )
        append(conn, actor.name, "account.token", row["name"], {"label": label}, request_id)
    return token


def principal_for_token(db: sa.Engine, token: str) -> Principal:
    with db.connect() as conn:
        row = conn.execute(
            sa.select(_T.c.account_id).where(_T.c.digest == _digest(token), _T.c.revoked.is_(False))
        ).first()
        found = _principal_by_id(conn, int(row[0])) if row else None
    if found is None:
        raise NotAuthenticated("无效的访问令牌")
    return found


def open_session(db: sa.Engine, principal: Principal) -> tuple[str, str]:
    """A new web session: (cookie value, CSRF token); both random, the cookie stored hashed."""
    if principal.account_id is None:
        raise AuthError("the local administrator has no web session")
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = _now()
    with db.begin() as conn:
        conn.execute(sa.delete(_S).where(_S.c.expires_at < now))
        conn.execute(
            sa.insert(_S).values(
                digest=_digest(sid),
                account_id=principal.account_id,
                csrf=csrf,
                created_at=now,
                expires_at=now + dt.timedelta(hours=SESSION_HOURS),
            )
        )
    return sid, csrf


def session_principal(db: sa.Engine, sid: str) -> tuple[Principal, str]:
    """The principal and CSRF token of a live session; NotAuthenticated if none."""
    with db.connect() as conn:
        row = conn.execute(
            sa.select(_S.c.account_id, _S.c.csrf, _S.c.expires_at).where(_S.c.digest == _digest(sid))
        ).first()
        found = _principal_by_id(conn, int(row[0])) if row and _aware(row[2]) > _now() else None
    if found is None or row is None:
        raise NotAuthenticated("会话已失效，请重新登录")
    return found, str(row[1])


def close_session(db: sa.Engine, sid: str) -> None:
    with db.begin() as conn:
        conn.execute(sa.delete(_S).where(_S.c.digest == _digest(sid)))
