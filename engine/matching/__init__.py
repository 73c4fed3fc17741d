"""Running matching work in processes that die with this one: one runner for the whole engine.

- :mod:`engine.matching.pool` — the runner: a worker forked fresh for each of a check's partitions, a
  bounded number at once, inheriting what it needs (:func:`run_forked`), or fork-server workers of a
  :class:`concurrent.futures.ProcessPoolExecutor` sharing chunks (:func:`run_chunks`,
  :func:`engine.matcher.match_all`); a worker that dies is reported, not waited for;
- :mod:`engine.matching.lifeline` — what every child holds first: PR_SET_PDEATHSIG and a pipe watchdog (the
  scheduler's job child and a cluster task's child hold it too), and which process owns a check run;
- :mod:`engine.matching.errors` — :class:`MatcherError`, :class:`MatcherCrashed`.
"""

from engine.matching.errors import MatcherCrashed, MatcherError
from engine.matching.pool import run_chunks, run_forked

__all__ = ["MatcherCrashed", "MatcherError", "run_chunks", "run_forked"]
