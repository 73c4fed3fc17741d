"""Issue 11: user text in every output is shown, never obeyed — no live spreadsheet formulas, no broken
XLSX from control characters, no HTML or links in Markdown, no escape sequences on the terminal."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from engine.cli import main
from engine.safe_text import for_markdown, for_terminal, for_xml, json_for_terminal

EVIL_NAME = (
    "=HYPERLINK(\"http://evil.example/\",\"点我\")\x1b]0;pwned\x07\x1b[31m红<script>alert(1)</script>"
    "[点此](javascript:alert(1))\x9b2J\u202e反"
)
EVIL_FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1", "＝1+1"]


@pytest.fixture(scope="module")
def evil_db(tmp_path_factory) -> Path:
    """The sample checked for 2017, with a branch and a member renamed to attacks and a message poisoned."""
    where = tmp_path_factory.mktemp("evil")
    db = where / "e.db"
    sample = where / "s.jsonl"
    runner = CliRunner()
    assert runner.invoke(main, ["sample", str(sample)]).exit_code == 0
    assert runner.invoke(main, ["--db", str(db), "import", str(sample), "--no-judge"]).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE org SET name = ? WHERE id = 'b7'", (EVIL_NAME,))
        seq, content = conn.execute(
            "SELECT seq, content FROM fact_version WHERE type = 'org' AND key = 'b7' AND current"
        ).fetchone()
        fact = json.loads(content)
        fact["name"] = EVIL_NAME
        conn.execute("UPDATE fact_version SET content = ? WHERE seq = ?", (json.dumps(fact, ensure_ascii=False), seq))
    result = runner.invoke(main, ["--db", str(db), "check", "--period", "2017", "--as-of", "2018-03-01"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM violation ORDER BY key LIMIT ?", (len(EVIL_FORMULAS),))]
        for key, formula in zip(keys, EVIL_FORMULAS, strict=True):
            conn.execute("UPDATE violation SET message = ? WHERE key = ?", (formula, key))
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def _run(db: Path, tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    copy = tmp_path / "c.db"
    shutil.copy(db, copy)
    return CliRunner().invoke(main, ["--db", str(copy), *args], catch_exceptions=False)


def test_xlsx_report_writes_user_text_as_strings_never_formulas(evil_db, tmp_path):
    out = tmp_path / "r.xlsx"
    result = _run(evil_db, tmp_path, "report", "--period", "2017", "--format", "xlsx", "--out", str(out))
    assert result.exit_code == 0, result.output  # an ESC in a name used to fail the whole report
    wb = load_workbook(out)
    formulas, seen, prefixed = [], set(), 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    formulas.append(cell.value)
                if isinstance(cell.value, str):
                    seen.add(cell.value)
                    if cell.value.startswith(("=", "+", "-", "@", "\t", "\r", "＝")):
                        assert cell.quotePrefix, cell.value
                        prefixed += 1
    assert formulas == []
    assert any(v.startswith("=HYPERLINK") and "\\x1b" in v for v in seen)  # shown, escaped, as text
    assert any(v == "=cmd|' /C calc'!A0" for v in seen)
    assert prefixed >= len(EVIL_FORMULAS)
    raw = out.read_bytes()
    assert b"<f>" not in raw  # no formula element anywhere in the file


def test_markdown_report_escapes_html_and_links(evil_db, tmp_path):
    out = tmp_path / "r.md"
    assert _run(evil_db, tmp_path, "report", "--period", "2017", "--format", "md", "--out", str(out)).exit_code == 0
    md = out.read_text(encoding="utf-8")
    assert not re.search(r"(?<!\\)<script", md) and not re.search(r"(?<!\\)\]\(javascript:", md)
    assert "\x1b" not in md and "\x9b" not in md
    assert "\\<script\\>" in md and "\\[点此\\](javascript:alert(1))" in md


def test_html_report_escapes_user_text(evil_db, tmp_path):
    out = tmp_path / "r.html"
    assert _run(evil_db, tmp_path, "report", "--period", "2017", "--format", "html", "--out", str(out)).exit_code == 0
    page = out.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    "args",
    [
        ["report", "--period", "2017"],
        ["violations", "list", "--org", "b7"],
        ["violations", "list", "--format", "json"],
        ["orgs"],
        ["check", "--period", "2017", "--as-of", "2018-03-01", "--dry-run"],
        ["check", "--period", "2017", "--as-of", "2018-03-01", "--dry-run", "--format", "json"],
    ],
)
def test_terminal_output_carries_no_control_sequences(evil_db, tmp_path, args):
    result = _run(evil_db, tmp_path, *args)
    assert result.exit_code == 0, result.output
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", result.output), repr(result.output[:300])
    assert "\\x1b" in result.output or "\\u001b" in result.output  # shown, not dropped


def test_violations_show_sanitizes_its_details(evil_db, tmp_path):
    with sqlite3.connect(evil_db) as conn:
        (key,) = conn.execute("SELECT key FROM violation WHERE org = 'b7' LIMIT 1").fetchone()
    result = _run(evil_db, tmp_path, "violations", "show", key)
    assert result.exit_code == 0
    assert "\x1b" not in result.output and "\\x1b" in result.output


def test_the_sanitizers_keep_every_character_readable():
    assert for_terminal("a\x1b[31mb\x07\tc\nd") == "a\\x1b[31mb\\x07\tc\nd"
    assert for_terminal("\u202eevil") == "\\u202eevil"
    assert for_xml("a\x1bb\x00c\td") == "a\\x1bb\\x00c\td"
    assert for_markdown("<b>[x](javascript:y)</b>|") == "\\<b\\>\\[x\\](javascript:y)\\</b\\>\\|"
    assert for_markdown("2017-03 95.0% a_b") == "2017-03 95.0% a\\_b"
    assert json.loads(json_for_terminal({"k": "\x9b\x1b"})) == {"k": "\x9b\x1b"}
    assert "\x9b" not in json_for_terminal({"k": "\x9b"})
