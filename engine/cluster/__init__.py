"""A check's partitions as tasks on a Dask distributed cluster (``partyrules check --cluster ADDRESS``).

- :mod:`engine.cluster.plan` sizes the top-level org subtrees by their fact counts and packs them into
  balanced partitions;
- :mod:`engine.cluster.job` is what a Dask worker runs: it reads its partition from the shared database,
  builds and matches the subjects (durable_rules in a child process of its own, or in the worker's
  thread under a lock) and returns the findings;
- :mod:`engine.cluster.coordinator` submits the partitions, gathers the findings, and learns from the
  scheduler which partitions were run again after a worker died.

The coordinator stores the findings through the usual upsert (``rule|subject|period`` keys), so a task
that ran twice, or a check run again after the coordinator died, never duplicates a violation.
"""
