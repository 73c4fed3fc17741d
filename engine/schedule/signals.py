"""SIGTERM and SIGINT as a stop request for a long-running command (``schedule run``, ``alerts dispatch``).

A Python signal handler runs in the main thread between two bytecodes, wherever that thread is, which
may be inside ``threading.Event.wait`` holding the event's own lock: a handler calling ``stop.set()``
then waits for that lock forever, and the process never stops (CI hung on this once; a test sends
thousands of signals into a busy ``wait`` loop).  So the handler here only writes the signal number to
a pipe (``os.write`` takes no Python lock), and a relay thread reads it, logs it and sets ``stop``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

_log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_stop_signals(stop: threading.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGTERM and SIGINT (call from the main thread); returns a function restoring the old handlers."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def _relay() -> None:
        while True:
            data = os.read(read_fd, 1)
            if not data:  # write end closed: restored
                return
            _log.info("收到信号 %s，等待正在运行的任务结束后退出", signal.Signals(data[0]).name)
            stop.set()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        # a full pipe already holds a stop request
        with contextlib.suppress(BlockingIOError):
            os.write(write_fd, bytes([signum]))

    relay = threading.Thread(target=_relay, name="partyrules-signals", daemon=True)
    relay.start()
    previous = {sig: signal.signal(sig, _handler) for sig in STOP_SIGNALS}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(write_fd)
        relay.join()
        os.close(read_fd)

    return restore
