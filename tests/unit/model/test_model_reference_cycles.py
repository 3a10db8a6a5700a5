"""What the processors run per descriptor and per entity frees its objects on return.

A reference cycle (a closure that calls itself, an object holding a bound method of its
owner) is freed only by the garbage collector, which a worker then runs far more often:
docs/architecture.md, decision 27. Read on Backstage's examples, unchanged.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import pytest

from services.index.document import build_search_document
from services.model.descriptor import FileSource, LocationReading, read_catalog
from services.store.entity_search import build_search_entries


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _cycles_left_by(work: Callable[[], object]) -> int:
    gc.collect()  # what was made before `work` is not its doing
    work()
    return gc.collect()


def _example_reading(examples: FileSource, url: Callable[[str], str]) -> LocationReading:
    return read_catalog("all.yaml", examples, url)


def test_reading_a_catalog_with_locations_and_placeholders_leaves_no_cycles(
    collector_off: None, examples: FileSource, url: Callable[[str], str]
) -> None:
    reading = _example_reading(examples, url)
    assert reading.entities and reading.files_read  # what the reading went through
    assert _cycles_left_by(lambda: _example_reading(examples, url)) == 0


def test_building_an_entitys_search_rows_and_document_leaves_no_cycles(
    collector_off: None, examples: FileSource, url: Callable[[str], str]
) -> None:
    bodies = [(str(e.ref), e.to_backstage()) for e in _example_reading(examples, url).entities]
    assert _cycles_left_by(lambda: [build_search_entries(body) for _ref, body in bodies]) == 0
    assert (
        _cycles_left_by(lambda: [build_search_document(ref, body, 0.0) for ref, body in bodies])
        == 0
    )
