"""Subjects as columns: a chunk of one rule's subjects held field by field, records built on demand.

Nearly every subject of a province-year is compliant, so building a dict for each (~5–20 µs) only to
have the vectorised pre-filter (:mod:`engine.condition.prefilter`) read one or two of its fields was
most of a check's time.  A builder that can instead yields a :class:`SubjectColumns`: it gives the
values of the fields a condition reads for the whole chunk at once (:meth:`SubjectColumns.values`),
and the full :class:`Subject` of one index only when asked (:meth:`SubjectColumns.subject`) — for the
candidates of the pre-filter, which durable_rules then judges as before (it stays the authority:
every finding is still fired by the rule's own ruleset), and for the findings.

The invariant every implementation keeps (tests/test_columns.py holds it on the sample data):
``values(name)[i] == subject(i).fields[name]`` for every field ``values`` answers; a field it cannot
give cheaply it answers with ``None``, and :meth:`SubjectColumns.candidates` then builds every
subject of the chunk, as before.  Iterating a chunk gives all its subjects, so code that wants
records (the benchmark's floors, ``collect_work``) reads it as the list it used to be.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.condition.prefilter import column_of
from engine.subjects.base import Subject

if TYPE_CHECKING:
    from engine.condition.prefilter import Prefilter


class SubjectColumns(ABC):
    """``len(self)`` subjects of one rule, held as columns; a subject's record is built when asked."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def values(self, name: str) -> Sequence[Any] | None:
        """The value of field ``name`` for every subject of the chunk, in order, or None when this chunk
        holds no cheap column for it (the caller then reads the built subjects)."""

    @abstractmethod
    def subject(self, i: int) -> Subject:
        """The full record of subject ``i`` (as the dict builders made it)."""

    def __iter__(self) -> Iterator[Subject]:
        return (self.subject(i) for i in range(len(self)))

    def candidates(self, prefilter: Prefilter | None) -> list[Subject]:
        """The subjects that may satisfy the condition of ``prefilter`` (all of them without one): only
        these are built.  The pre-filter may over-select, never under-select; the caller still posts
        each candidate to durable_rules."""
        if prefilter is None:
            return list(self)
        columns = {}
        for path, kind in prefilter.fields.items():
            values = self.values(path)
            if values is None:  # a field without a column: build every record, as before columns
                return list(self)
            columns[path] = column_of(list(values), kind)
        mask = prefilter.candidates_of(columns, len(self))
        return [self.subject(i) for i in np.flatnonzero(mask).tolist()]


Chunk = list[Subject] | SubjectColumns
"""What a subject builder yields for one rule: records, or columns that build them on demand."""
