"""Child processes that die with their parent.

A worker forked by ``check`` holds hundreds of MB and a database connection; if ``check`` is killed
with SIGKILL nothing runs in it to stop the worker, which is reparented and may block forever writing
its answer into a pipe nobody reads.  Two independent guards, both set up first thing in the child:

* **PR_SET_PDEATHSIG** (Linux, through ``prctl`` via ctypes): the kernel sends the child SIGKILL when
  the thread that forked it exits.  Immediate, and works while the child is blocked in C code.
* **A pipe watchdog** (any POSIX system, and a fallback if ``prctl`` is unavailable): the parent keeps
  the write end of a pipe, the child a daemon thread blocked reading the other end; the parent's death
  closes the write end, the read returns end-of-file, and the thread ends the child with ``os._exit``.

:func:`process_identity` and :func:`is_alive` let a later process tell whether the owner of a
``check_run`` still runs (pid and start time, so a reused pid is not mistaken for it).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass

_log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
ORPHAN_EXIT_STATUS = 70  # the watchdog's exit status: "my parent is gone"
WATCHDOG_THREAD = "parent-watchdog"


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent (thread) exits; False off Linux."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0) != 0:
            _log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
            return False
    except (OSError, AttributeError) as exc:
        _log.warning("prctl(PR_SET_PDEATHSIG) unavailable: %s", exc)
        return False
    return True


def _watch(fd: int) -> None:
    try:
        while os.read(fd, 1):  # the parent never writes: any return is end-of-file (it is gone)
            pass
    except OSError:
        pass
    os._exit(ORPHAN_EXIT_STATUS)


def start_watchdog(read_fd: int) -> threading.Thread:
    """End this process (``os._exit``) when the write end of ``read_fd``'s pipe is closed everywhere."""
    thread = threading.Thread(target=_watch, args=(read_fd,), name=WATCHDOG_THREAD, daemon=True)
    thread.start()
    return thread


class Lifeline:
    """A pipe made by the parent before forking; each child calls :meth:`hold` first thing.

    Only the parent may keep the write end: every child closes its inherited copy in :meth:`hold`, so a
    sibling never keeps another child alive.  The parent calls :meth:`close` when its children are done.
    """

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.parent_pid = os.getpid()

    def hold(self, close_fds: tuple[int, ...] = ()) -> None:
        """In the child: die with the parent (PDEATHSIG, then the watchdog); close fds meant for others."""
        set_parent_death_signal()
        with contextlib.suppress(OSError):
            os.close(self.write_fd)
        for fd in close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        if os.getppid() != self.parent_pid:  # the parent died before the guard was set
            os._exit(ORPHAN_EXIT_STATUS)
        start_watchdog(self.read_fd)

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    started: str  # the kernel's start time of the process (Linux), "" where unknown


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return ""
    # field 22, counted after the command name, which is in parentheses and may hold spaces
    return stat.rsplit(")", 1)[-1].split()[19]


def process_identity(pid: int | None = None) -> ProcessIdentity:
    pid = os.getpid() if pid is None else pid
    return ProcessIdentity(socket.gethostname(), pid, _start_time(pid))


def is_alive(owner: ProcessIdentity) -> bool | None:
    """Whether ``owner`` still runs: None when it ran on another host (this process cannot tell)."""
    if owner.host != socket.gethostname():
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if owner.started and _start_time(owner.pid) not in ("", owner.started):
        return False  # the pid was reused by another process
    return not _is_zombie(owner.pid)  # a zombie has finished; its parent has not reaped it yet


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().decode("ascii", "replace").rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
