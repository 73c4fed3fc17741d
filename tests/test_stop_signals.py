"""SIGTERM/SIGINT as a stop request: set from a relay thread, never from inside the handler.

A handler that called ``stop.set()`` itself deadlocked when the signal landed while the main thread
was inside ``stop.wait`` holding the event's lock (``schedule run`` then never stopped; CI hung on it
once).  That version deadlocks within a few of the signals below.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from engine.schedule.signals import install_stop_signals

HAMMER = """
import os, signal, sys, threading
from engine.schedule.signals import install_stop_signals
for i in range(int(sys.argv[1])):
    stop = threading.Event()
    restore = install_stop_signals(stop)
    try:
        timer = threading.Timer(0.0005 * (i % 7), os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        while not stop.wait(0):  # busy inside Event.wait: the signal lands while its lock is held
            pass
        timer.join()
    finally:
        restore()
print("stopped", i + 1)
"""


def test_a_signal_landing_inside_event_wait_still_stops() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HAMMER, "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()  # SIGTERM is what it waits for; a deadlocked one must be killed
        out, err = proc.communicate()
        pytest.fail(f"deadlocked after a stop signal: {out[-200:]}{err[-2000:]}")
    assert proc.returncode == 0, err
    assert out.split() == ["stopped", "200"]


def test_sigterm_sets_stop_logs_it_and_restore_puts_the_old_handlers_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    threads = threading.active_count()
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="engine.schedule.signals")
    restore = install_stop_signals(stop)
    try:
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(10)
    finally:
        restore()
    assert any("收到信号 SIGTERM" in r.getMessage() for r in caplog.records)
    assert {sig: signal.getsignal(sig) for sig in before} == before
    deadline = time.monotonic() + 5
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == threads  # the relay thread ended with restore


def test_sigint_stops_too() -> None:
    stop = threading.Event()
    restore = install_stop_signals(stop)
    try:
        os.kill(os.getpid(), signal.SIGINT)  # not KeyboardInterrupt: a clean stop like SIGTERM
        assert stop.wait(10)
    finally:
        restore()
