"""atheris target for the fact readers (issue 11): any bytes as JSONL, CSV or XLSX, and the validator.

Every input must give objects or problems (or refuse the whole file with UnreadableFileError);
anything else raised is a crash atheris reports.  Run by ``tests/test_fuzz_atheris.py`` for a
bounded number of runs; by hand, longer::

    .venv/bin/python tests/fuzz/fuzz_readers.py -max_total_time=600
"""

from __future__ import annotations

import sys

import atheris
import openpyxl  # noqa: F401  (imported before instrumenting: only our modules are instrumented)
import orjson  # noqa: F401
import pydantic  # noqa: F401

with atheris.instrument_imports(include=["facts"]):
    from facts.errors import FieldProblem
    from facts.readers import UnreadableFileError, read_data
    from facts.validate import validate_object

FORMATS = [("f", ".jsonl"), ("dues", ".csv"), ("meetings", ".csv"), ("book", ".xlsx")]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    stem, suffix = FORMATS[data[0] % len(FORMATS)]
    try:
        for item in read_data(data[1:], f"{stem}{suffix}", stem, suffix, []):
            if isinstance(item, FieldProblem):
                assert str(item).startswith(f"{stem}{suffix}"), str(item)
            else:
                location, raw = item
                validate_object(raw, location)
    except UnreadableFileError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
