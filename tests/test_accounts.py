"""Accounts: argon2 passwords, case-insensitive names, tokens stored hashed, disabling, who may manage them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.auth import accounts
from engine.auth.principal import AuthError, Forbidden, NotAuthenticated, Principal
from engine.cli import main
from engine.schema import init_schema

ROOT = Principal.local("root")


@pytest.fixture
def db(sqlite_engine):
    init_schema(sqlite_engine)
    return sqlite_engine


def test_passwords_are_argon2_and_names_ignore_case(db):
    accounts.add_user(db, ROOT, "Alice", ["inspector@o1"], "s3cret-pass")
    with db.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM account")).scalar()
    assert stored.startswith("$argon2id$") and "s3cret-pass" not in stored
    assert accounts.authenticate(db, "alice", "s3cret-pass").name == "Alice"
    with pytest.raises(NotAuthenticated):
        accounts.authenticate(db, "Alice", "wrong-pass")
    with pytest.raises(NotAuthenticated):
        accounts.authenticate(db, "nobody", "s3cret-pass")
    with pytest.raises(AuthError, match="exists already"):
        accounts.add_user(db, ROOT, "ALICE", ["inspector"], "another-pass")
    with pytest.raises(AuthError, match="at least 8"):
        accounts.add_user(db, ROOT, "Bob", ["inspector"], "short")


def test_tokens_are_stored_hashed_and_die_with_the_account(db):
    accounts.add_user(db, ROOT, "Bob", ["secretary@b1"], None)
    token = accounts.create_token(db, ROOT, "bob", "phone")
    with db.connect() as conn:
        assert token not in str(conn.execute(sa.text("SELECT * FROM api_token")).all())
    assert accounts.principal_for_token(db, token).grants[0].org == "b1"
    accounts.set_disabled(db, ROOT, "Bob")
    with pytest.raises(NotAuthenticated):
        accounts.principal_for_token(db, token)
    with pytest.raises(NotAuthenticated):
        accounts.principal_for_token(db, token + "x")


def test_only_admins_manage_accounts(db):
    accounts.add_user(db, ROOT, "Carol", ["inspector"], "carol-pass")
    carol = accounts.principal_for(db, "carol")
    with pytest.raises(Forbidden):
        accounts.add_user(db, carol, "Dave", ["admin"], None)
    accounts.set_password(db, carol, "Carol", "carol-new-pass")  # her own password: allowed
    with pytest.raises(Forbidden):
        accounts.set_password(db, carol, "root-ish", "whatever-pass")


def test_users_commands(tmp_path):
    db = str(tmp_path / "u.db")
    run = CliRunner()
    assert run.invoke(main, ["--db", db, "init"]).exit_code == 0  # only init and import create a database
    out = run.invoke(
        main,
        ["--db", db, "users", "add", "admin", "--role", "admin", "--password-stdin"],
        input="first-admin-pass\n",
    )
    assert out.exit_code == 0 and "account admin created: admin@*" in out.output
    assert (
        run.invoke(
            main, ["--db", db, "users", "add", "王书记", "--role", "secretary@b1", "--no-password"]
        ).exit_code
        == 0
    )
    bad = run.invoke(main, ["--db", db, "users", "add", "x", "--role", "boss"])
    assert bad.exit_code == 1 and "unknown role 'boss'" in bad.output
    listed = run.invoke(main, ["--db", db, "users", "list", "--format", "json"]).output
    assert '"secretary@b1"' in listed
    assert run.invoke(main, ["--db", db, "users", "disable", "王书记"]).exit_code == 0
    acting = run.invoke(main, ["--db", db, "--as", "王书记", "users", "list"])
    assert acting.exit_code == 1 and "no enabled account" in acting.output
    run.invoke(main, ["--db", db, "users", "add", "sec2", "--role", "secretary@b2", "--no-password"])
    denied = run.invoke(main, ["--db", db, "--as", "sec2", "users", "list"])
    assert denied.exit_code == 1 and "无权执行 account.manage" in denied.output
    assert (
        run.invoke(
            main, ["--db", db, "users", "passwd", "admin", "--password-stdin"], input="second-pass-9\n"
        ).exit_code
        == 0
    )
    assert run.invoke(main, ["--db", db, "audit", "verify"]).exit_code == 0


def test_the_cli_reads_as_the_account_it_is_told(tmp_path):
    """`--as` applies the account's scope to reads too: a secretary of b1 sees b1, and b2 is 'not found'."""
    from audit_helpers import seed_two_branches

    db = str(tmp_path / "as.db")
    seed_two_branches(db)
    run = CliRunner()
    mine = run.invoke(main, ["--db", db, "--as", "sec1", "history", "meeting", "b1-m"])
    assert mine.exit_code == 0, mine.output
    other = run.invoke(main, ["--db", db, "--as", "sec1", "history", "meeting", "b2-m"])
    missing = run.invoke(main, ["--db", db, "--as", "sec1", "history", "meeting", "nothing"])
    assert other.exit_code == missing.exit_code == 1
    assert "no meeting with key 'b2-m'" in other.output and "no meeting with key 'nothing'" in missing.output
    wrote = run.invoke(main, ["--db", db, "--as", "sec1", "add", "meeting", "--org", "b2", "--kind",
                              "committee_meeting", "--date", "2017-06-27", "--attendees", "m2"])
    assert wrote.exit_code == 1 and 'unknown org "b2"' in wrote.output


def test_audit_verify_from_the_cli_names_the_tampered_row(tmp_path):
    import sqlite3

    from audit_helpers import seed_two_branches

    db = str(tmp_path / "t.db")
    seed_two_branches(db)
    run = CliRunner()
    assert run.invoke(main, ["--db", db, "audit", "verify"]).exit_code == 0
    denied = run.invoke(main, ["--db", db, "--as", "sec1", "audit", "verify"])
    assert denied.exit_code == 1 and "audit.verify" in denied.output
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE fact_version SET content = replace(content, '2017-03-10', '2017-03-11') WHERE key = 'b2-m'")
    result = run.invoke(main, ["--db", db, "audit", "verify"])
    assert result.exit_code == 1
    assert "TAMPERED: fact_version seq" in result.output and "(meeting b2-m v1)" in result.output
