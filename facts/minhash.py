"""MinHash band keys of a text's character 3-grams: the index behind copy detection (照抄).

Each text gets 128 min-hashes of its distinct 3-grams (white space removed),
cut into 16 bands of 8 rows; a band key is one 64-bit number.  Two texts that
share a band key are candidates for an exact comparison (see
:mod:`engine.subjects.similarity`).  The keys are stored with each meeting at
import (``minutes_sig``), so the hash parameters are fixed forever.
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
_CHUNK = 50_000  # shingles per vectorised block (memory: CHUNK x 128 x 8 bytes)


def codes(content: str) -> np.ndarray:
    """The distinct character 3-grams of a text (white space removed), as sorted uint64 codes."""
    s = _SPACE.sub("", content)
    c = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(c) < 3:
        return np.unique(c)
    return np.unique((c[:-2] << np.uint64(42)) | (c[1:-1] << np.uint64(21)) | c[2:])


def band_keys(contents: Sequence[str]) -> list[list[int]]:
    """``BANDS`` signed 64-bit band keys per text (empty list for a text without 3-grams)."""
    sets = [codes(c) for c in contents]
    out: list[list[int]] = [[] for _ in contents]
    start = 0
    while start < len(sets):
        stop, size = start, 0
        while stop < len(sets) and (size == 0 or size + sets[stop].size <= _CHUNK):
            size += sets[stop].size
            stop += 1
        block = [s for s in sets[start:stop] if s.size]
        idx = [i for i in range(start, stop) if sets[i].size]
        if block:
            flat = np.concatenate(block)
            offsets = np.cumsum([0] + [b.size for b in block[:-1]])
            hashes = flat[:, None] * _A[None, :] + _B[None, :]  # wraps mod 2^64: multiply-add hashing
            mins = np.minimum.reduceat(hashes, offsets, axis=0)  # (texts, BANDS*ROWS)
            keys = (mins.reshape(len(block), BANDS, ROWS) * _MIX).sum(axis=2, dtype=np.uint64)
            signed = keys.view(np.int64)
            for row, i in enumerate(idx):
                out[i] = [int(k) for k in signed[row]]
        start = stop
    return out
