"""MinHash band keys of a text's character 3-grams: the index behind copy detection (照抄).

Each text gets 128 min-hashes of its distinct 3-grams (white space removed),
cut into 16 bands of 8 rows; a band key is one 64-bit number.  Two texts that
share a band key are candidates for an exact comparison (see
:mod:`engine.subjects.similarity`).  The keys are stored with each meeting at
import (``minutes_sig``), so the hash parameters are fixed forever.

:func:`band_keys` works on many texts at once: their 3-grams are cut from one
joined array (a minimum does not care about repeats, so no per-text
``unique``), and the 128 hash functions run as a loop over one row of
multiply-add-minimum each, on blocks small enough to stay in cache.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

BANDS = 16
ROWS = 8
_SPACE = re.compile(r"\s+")
_RNG = np.random.default_rng(20170101)  # fixed: band keys are stored, so they must never change
_A = _RNG.integers(1, 2**63, BANDS * ROWS, dtype=np.uint64) | np.uint64(1)
_B = _RNG.integers(0, 2**63, BANDS * ROWS, dtype=np.uint64)
_MIX = _RNG.integers(1, 2**63, ROWS, dtype=np.uint64) | np.uint64(1)
_BLOCK = 65_536  # characters per vectorised block: the working row (512 KB) stays in the CPU cache
_SHIFT_1 = np.uint64(21)
_SHIFT_2 = np.uint64(42)


def codes(content: str) -> np.ndarray:
    """The distinct character 3-grams of a text (white space removed), as sorted uint64 codes."""
    s = _SPACE.sub("", content)
    c = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(c) < 3:
        return np.unique(c)
    return np.unique((c[:-2] << _SHIFT_2) | (c[1:-1] << _SHIFT_1) | c[2:])


def band_keys(contents: Sequence[str]) -> list[list[int]]:
    """``BANDS`` signed 64-bit band keys per text (empty list for a text without 3-grams)."""
    stripped = [_SPACE.sub("", c) for c in contents]
    out: list[list[int]] = [[] for _ in contents]
    todo = [i for i, s in enumerate(stripped) if s]
    start = 0
    while start < len(todo):
        stop, size = start, 0
        while stop < len(todo) and (size == 0 or size + len(stripped[todo[stop]]) <= _BLOCK):
            size += len(stripped[todo[stop]])
            stop += 1
        block = todo[start:stop]
        keys = _block_keys([stripped[i] for i in block])
        for row, i in enumerate(block):
            out[i] = keys[row]
        start = stop
    return out


def _shingles(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The 3-gram codes of non-empty white-space-free texts, one run per text (repeats kept), and run starts.

    A text shorter than 3 characters has its characters as its codes, as :func:`codes` has.
    """
    lengths = np.fromiter((len(s) for s in texts), dtype=np.int64, count=len(texts))
    chars = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if chars.size >= 3:
        grams = (chars[:-2] << _SHIFT_2) | (chars[1:-1] << _SHIFT_1) | chars[2:]
    else:
        grams = np.empty(0, dtype=np.uint64)
    ends = np.cumsum(lengths)
    begins = ends - lengths
    short = lengths < 3
    # a text's own 3-grams start at begins .. ends-3; short texts contribute their characters
    counts = np.where(short, lengths, lengths - 2)
    run_starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    source = np.repeat(begins - run_starts, counts) + np.arange(int(counts.sum()))
    is_char = np.repeat(short, counts)
    flat = np.empty(source.size, dtype=np.uint64)
    flat[~is_char] = grams[source[~is_char]]
    flat[is_char] = chars[source[is_char]]
    return flat, run_starts


def _block_keys(texts: list[str]) -> list[list[int]]:
    flat, starts = _shingles(texts)
    mins = np.empty((BANDS * ROWS, len(texts)), dtype=np.uint64)
    work = np.empty_like(flat)
    for j in range(BANDS * ROWS):
        np.multiply(flat, _A[j], out=work)  # wraps mod 2^64: multiply-add hashing
        np.add(work, _B[j], out=work)
        mins[j] = np.minimum.reduceat(work, starts)
    keys = (mins.T.reshape(len(texts), BANDS, ROWS) * _MIX).sum(axis=2, dtype=np.uint64)
    rows: list[list[int]] = keys.view(np.int64).tolist()
    return rows
