"""Reading a big JSON Lines file in chunks of raw lines, and preparing chunks in worker processes.

:func:`read_chunks` never holds the whole file: a JSON Lines file is read line by
line and handed on as :class:`LineChunk` objects of :data:`LINES` raw lines (the
parsing happens where the chunk is prepared).  Anything that needs the whole
text — a file that is not UTF-8 (GB18030 is detected on the whole text), one JSON
array, a small file — goes through :func:`facts.readers.read_file` as before,
so the messages are the same either way.

:func:`prepared` turns a mixed stream of items and line chunks into
:class:`~facts.prepare.ReadyChunk` objects, in input order: line chunks go to
a pool of worker processes when there is more than one core (at most a few
chunks ahead, so memory stays bounded), items are prepared in-process.
"""

from __future__ import annotations

import codecs
import logging
import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from facts.prepare import PreparedChunk, ReadyChunk, prepare_items, prepare_lines, ready, unpickle_ready
from facts.readers import JSON_SUFFIXES, FileNote, Item, read_file

log = logging.getLogger(__name__)

LINES = 2000  # raw lines a chunk
STREAM_FROM = 4 << 20  # bytes: smaller files are read whole (the old path; a chunk or two anyway)
_BLOCK = 8 << 20
_UTF8_BOM = b"\xef\xbb\xbf"
_ITEMS = 2000  # decoded items prepared together in-process


@dataclass
class LineChunk:
    """Raw lines of one JSON Lines file: ``(line number, bytes)``, blank and comment lines left out."""

    label: str
    lines: list[tuple[int, bytes]]


def _streamable(path: Path) -> bool:
    """A JSON Lines file that is UTF-8 throughout and not one JSON array (checked without holding it)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    first = True
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            if first:
                if block.startswith((b"\xff\xfe", b"\xfe\xff")):
                    return False
                head = block.removeprefix(_UTF8_BOM)
                for raw in head.split(b"\n", 200):
                    stripped = raw.strip()
                    if stripped and not stripped.startswith(b"#"):
                        if stripped == b"[":
                            return False
                        break
                first = False
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                return False
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return not first


def read_chunks(path: Path, notes: list[FileNote] | None = None) -> Iterator[Item | LineChunk]:
    """:func:`facts.readers.read_file`, but a big UTF-8 JSON Lines file as chunks of raw lines."""
    suffix = path.suffix.lower()
    try:
        big = suffix in JSON_SUFFIXES and path.stat().st_size >= STREAM_FROM and _streamable(path)
    except OSError:
        big = False  # read_file says why it cannot be read
    if not big:
        yield from read_file(path, notes)
        return
    label = str(path)
    chunk: list[tuple[int, bytes]] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            stripped = raw.strip()
            if number == 1 and stripped.startswith(_UTF8_BOM):
                raw = raw.removeprefix(_UTF8_BOM)
                stripped = raw.strip()
            if not stripped or stripped.startswith(b"#"):
                continue
            chunk.append((number, raw))
            if len(chunk) >= LINES:
                yield LineChunk(label, chunk)
                chunk = []
    if chunk:
        yield LineChunk(label, chunk)


def prepare_chunk(chunk: LineChunk) -> PreparedChunk:
    return prepare_lines(chunk.label, [(n, raw.decode("utf-8")) for n, raw in chunk.lines])


def prepare_chunk_pickled(chunk: LineChunk) -> bytes:
    """What a worker runs: the prepared chunk as a :class:`~facts.prepare.ReadyChunk`, pickled here (the importer
    unpickles its keys and problems, and spills its records' bytes as they are)."""
    return pickle.dumps(ready(prepare_chunk(chunk)), protocol=pickle.HIGHEST_PROTOCOL)


def default_processes() -> int:
    """Worker processes for preparing: ``PARTYRULES_IMPORT_PROCESSES``, else the cores this process may use."""
    named = os.environ.get("PARTYRULES_IMPORT_PROCESSES", "").strip()
    if named.isdigit():
        return int(named)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _submit(pool: ProcessPoolExecutor, chunk: LineChunk) -> Future[bytes] | None:
    """``chunk`` sent to a worker, or None when the pool is already broken (it says so at submit once it has
    seen a worker die, which may be before the dead worker's own future is read)."""
    try:
        return pool.submit(prepare_chunk_pickled, chunk)
    except BrokenProcessPool:
        return None


def prepared(source: Iterable[Item | LineChunk], processes: int | None = None) -> Iterator[ReadyChunk]:
    """Every item and line chunk of ``source`` prepared, in input order (see the module's text)."""
    workers = default_processes() if processes is None else processes
    pool: ProcessPoolExecutor | None = None
    ahead: deque[Future[bytes] | ReadyChunk | LineChunk] = deque()
    chunks: dict[int, LineChunk] = {}  # id(future) -> its chunk, to prepare here if the pool breaks
    batch: list[Item] = []
    broken = False

    def settle(slot: Future[bytes] | ReadyChunk | LineChunk) -> ReadyChunk:
        nonlocal pool, broken
        if isinstance(slot, ReadyChunk):
            return slot
        if isinstance(slot, LineChunk):
            return ready(prepare_chunk(slot))
        chunk = chunks.pop(id(slot))
        try:
            data = slot.result()
        except BrokenProcessPool as exc:  # a worker died (killed, out of memory): go on in this process
            log.warning("import: a worker process died (%s); preparing the rest in this process", exc)
            broken = True
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = None
            return ready(prepare_chunk(chunk))
        return unpickle_ready(data)

    try:
        for item in source:
            if isinstance(item, LineChunk):
                if batch:
                    ahead.append(ready(prepare_items(batch)))
                    batch = []
                if workers > 1 and pool is None and not broken:
                    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
                future = _submit(pool, item) if pool is not None else None
                if future is not None:
                    chunks[id(future)] = item
                    ahead.append(future)
                else:
                    if pool is not None:  # found broken at submit: a worker died before its answer was read
                        log.warning("import: a worker process died; preparing the rest in this process")
                        broken = True
                        pool.shutdown(wait=False, cancel_futures=True)
                        pool = None
                    ahead.append(item)  # prepared here, in order (the chunks already sent are settled first)
            else:
                batch.append(item)
                if len(batch) >= _ITEMS:
                    ahead.append(ready(prepare_items(batch)))
                    batch = []
            while ahead and (len(ahead) > 2 * max(workers, 1) or isinstance(ahead[0], ReadyChunk)):
                yield settle(ahead.popleft())
        if batch:
            ahead.append(ready(prepare_items(batch)))
        while ahead:
            yield settle(ahead.popleft())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
