"""CLI start-up time: ``partyrules --help`` and ``--version`` against ``python -c pass``, same machine, same run.

    python bench/startup.py [--runs 15] [--compare OTHER_CHECKOUT]

Each command is started ``--runs`` times in turn with the baseline (interleaved, so load on the machine
hits both alike); the minimum and the median are printed as JSON, with the ratios to the baseline and
the extra milliseconds over it.  ``in_process_ms`` is the time from the first import of the CLI to its
exit measured inside the process (no interpreter start-up, less scheduling noise).  ``--compare`` times
another checkout's CLI in the same loop with this interpreter (e.g. main before a change).  The target of issue 15 is
under 0.3 s for --help and --version.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parent.parent
ENTRY = "from engine.cli import main; main(prog_name='partyrules')"  # what the console script runs
TIMED = (
    "import sys, time\n"
    "t0 = time.perf_counter()\n"
    "from engine.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:], prog_name='partyrules')\n"
    "except SystemExit:\n"
    "    pass\n"
    "sys.stderr.write(f'@@{time.perf_counter() - t0}')\n"
)
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "partyrules --help": [sys.executable, "-c", ENTRY, "--help"],
    "partyrules --version": [sys.executable, "-c", ENTRY, "--version"],
    "partyrules check --help": [sys.executable, "-c", ENTRY, "check", "--help"],
}


def _once(argv: list[str], repo: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=repo, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def _inside(args: list[str], repo: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", TIMED, *args], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    return float(done.stderr.rsplit("@@", 1)[1])


@click.command()
@click.option("--runs", type=int, default=15, show_default=True)
@click.option(
    "--compare",
    type=click.Path(file_okay=False, exists=True),
    multiple=True,
    help="Another checkout whose CLI is timed in the same loop (e.g. an export of main before a change).",
)
def main(runs: int, compare: tuple[str, ...]) -> None:
    """Print the start-up times as JSON."""
    roots = [REPO, *(Path(c).resolve() for c in compare)]
    times: dict[tuple[Path, str], list[float]] = {(r, n): [] for r in roots for n in COMMANDS}
    inside: dict[tuple[Path, str], list[float]] = {k: [] for k in times if k[1].startswith("partyrules")}
    for _ in range(runs):  # interleaved: load on the machine hits every command alike
        for root, name in times:
            argv = COMMANDS[name]
            times[(root, name)].append(_once(argv, root))
            if (root, name) in inside:
                inside[(root, name)].append(_inside(argv[3:], root))
    result: dict[str, dict[str, dict[str, float]]] = {}
    for root in roots:
        base = times[(root, "python -c pass")]
        base_min, base_median = min(base), statistics.median(base)
        out = result.setdefault(str(root), {})
        for name in COMMANDS:
            ts = times[(root, name)]
            low, mid = min(ts), statistics.median(ts)
            out[name] = {
                "min_s": round(low, 3),
                "median_s": round(mid, 3),
                "min_over_python": round(low / base_min, 2),
                "median_over_python": round(mid / base_median, 2),
                "extra_ms_min": round((low - base_min) * 1000, 1),
            }
            if (root, name) in inside:
                out[name]["in_process_ms_min"] = round(min(inside[(root, name)]) * 1000, 1)
                out[name]["in_process_ms_median"] = round(statistics.median(inside[(root, name)]) * 1000, 1)
    click.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
