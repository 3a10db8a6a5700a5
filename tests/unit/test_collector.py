"""The garbage collector's settings every long-running role applies after starting."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.collector import YOUNG_THRESHOLD, settle_collector


class Node:
    def __init__(self) -> None:
        self.peer: Node | None = None


@pytest.fixture
def settled() -> Iterator[None]:
    before = gc.get_threshold()
    settle_collector()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_objects_built_at_start_are_left_out_of_later_collections(settled: None) -> None:
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


def test_cycles_made_after_settling_are_still_collected_without_being_asked(
    settled: None,
) -> None:
    first, second = Node(), Node()
    first.peer, second.peer = second, first
    collected = weakref.ref(first)
    del first, second
    assert collected() is not None  # a cycle: reference counting alone never frees it
    held = [[] for _ in range(YOUNG_THRESHOLD * 2)]  # net allocations past the threshold
    assert collected() is None
    del held
