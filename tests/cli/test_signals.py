"""api/cli/signals.py: SIGTERM leaves the long-running commands the way Ctrl-C does."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from api.cli.signals import interrupt_on_sigterm, sigterm_as_interrupt, wait_for_interrupt


def test_sigterm_inside_the_block_is_a_keyboard_interrupt_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    cleaned = False
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()  # not reached when the handler raised on delivery
        finally:
            cleaned = True  # what `finally` in up/triton/drill does: stop what was started
    assert cleaned
    assert signal.getsignal(signal.SIGTERM) is before


def test_wait_for_interrupt_returns_through_keyboard_interrupt_on_sigterm() -> None:
    before = signal.getsignal(signal.SIGTERM)
    try:
        interrupt_on_sigterm()
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(KeyboardInterrupt):
            wait_for_interrupt()
    finally:
        signal.signal(signal.SIGTERM, before)


def test_outside_the_main_thread_nothing_changes() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def worker() -> None:
        seen.append(interrupt_on_sigterm())
        with sigterm_as_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [None, before]
