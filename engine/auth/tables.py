"""Tables of accounts (账号), their roles scoped to an org subtree, API tokens and web sessions.

Secrets are never stored: passwords as argon2 hashes, tokens and session ids as SHA-256 digests.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class Account(SQLModel, table=True):
    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)  # as given: 张三, Alice
    name_key: str = Field(max_length=200, unique=True)  # NFKC + casefold: "Alice" and "alice" are one account
    password_hash: str | None = Field(default=None, max_length=200)  # argon2id; None: no password login
    disabled: bool = False
    created_at: dt.datetime
    created_by: str = Field(default="", max_length=200)


class AccountRole(SQLModel, table=True):
    """One grant: ``role`` over the subtree of ``org`` (None: the whole tree)."""

    __tablename__ = "account_role"
    __table_args__ = (UniqueConstraint("account_id", "role", "org"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(index=True, foreign_key="account.id")
    role: str = Field(max_length=32)
    org: str | None = Field(default=None, max_length=200)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(index=True, foreign_key="account.id")
    digest: str = Field(max_length=64, unique=True)  # SHA-256 of the token; the token itself is shown once
    label: str = Field(default="", max_length=200)
    created_at: dt.datetime
    revoked: bool = False


class WebSession(SQLModel, table=True):
    __tablename__ = "web_session"

    digest: str = Field(primary_key=True, max_length=64)  # SHA-256 of the cookie value
    account_id: int = Field(index=True, foreign_key="account.id")
    csrf: str = Field(max_length=64)  # the form token bound to this session
    created_at: dt.datetime
    expires_at: dt.datetime
