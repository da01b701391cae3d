"""The startup heap is settled: its garbage collected, the rest frozen (api/heap.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from api import heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """gc.freeze() is process-wide: every test here gives the heap back as it found it."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_settle_collects_startup_garbage_before_freezing_the_rest() -> None:
    garbage, kept = _Node(), _Node()
    gone = weakref.ref(garbage)
    del garbage
    frozen = heap.settle()
    assert gone() is None  # collected, not frozen for the life of the process
    assert frozen == gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects())  # frozen: no collection walks it
    assert kept.me is kept
