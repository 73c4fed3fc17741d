"""The atheris target for the readers, run for a bounded time in the suite (issue 11).

atheris is a test extra for Python < 3.12 (its wheels); where it cannot be installed the test
skips saying so.  The fuzzer starts from a small corpus of real inputs (a JSONL line, CSV tables,
a workbook) and runs at most 20,000 inputs or 20 seconds; a crash fails the test with its input.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

TARGET = Path(__file__).parent / "fuzz" / "fuzz_readers.py"


def seeds(folder: Path) -> None:
    folder.mkdir()
    line = {"type": "dues", "member": "m1", "month": "2017-06", "amount": 45, "paid_on": "2017-06-20"}
    (folder / "jsonl").write_bytes(b"\x00" + json.dumps(line).encode() + b"\n#c\n{\"type\":\"org\"}\n")
    (folder / "csv").write_bytes(b"\x01member,month,amount,paid_on\nm1,2017-06,45,2017-06-20\nm2,\"2017\n")
    (folder / "csv2").write_bytes(
        "\x02id,org,kind,date,attendees,on_leave,备注\nx,b1,committee_meeting,2017-06-01,m1;m2,m3:出差:是,注\n".encode()
    )
    book = openpyxl.Workbook()
    book.active.title = "会议"
    book.active.append(["id", "org", "kind", "date"])
    book.active.append(["x", "b1", "committee_meeting", "=TODAY()"])
    buffer = io.BytesIO()
    book.save(buffer)
    (folder / "xlsx").write_bytes(b"\x03" + buffer.getvalue())


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed (no wheel for this Python)")
def test_atheris_readers_bounded_run(tmp_path):
    corpus = tmp_path / "corpus"
    seeds(corpus)
    result = subprocess.run(
        [sys.executable, str(TARGET), str(corpus), "-runs=20000", "-max_total_time=20", "-max_len=4096",
         "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent,
    )
    tail = (result.stdout + result.stderr)[-3000:]
    assert result.returncode == 0, tail
    assert "Done" in tail and not list(tmp_path.glob("crash-*")), tail
