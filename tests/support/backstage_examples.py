"""Backstage's own example descriptors (../shared/data/backstage-examples), read as Cairn would.

The folder is used unchanged. Reading starts at the catalog files
CATALOG_FILES names (what the e2e tests set as CAIRN_CATALOG_FILES): `all.yaml` and
`acme/org.yaml` with the Location targets they lead to, and every descriptor in the
kind folders (not `legacy/`, which repeats their refs). Like the descriptor processor, a
file reached through another's Location is not read again as a root. The result is the
entity changes the processor would publish, for tests that load a store directly.
"""

from __future__ import annotations

from pathlib import Path

from services.git.reader import TreeEntry, find_catalog_files
from services.model.catalog import location_id
from services.model.descriptor import read_catalog
from services.model.events import EntityChanged, RelationRecord
from services.model.relations import derive_relations

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "backstage-examples"
CATALOG_FILES = (
    "all.yaml,org.yaml,apis/*.yaml,components/*.yaml,domains/*.yaml,resources/*.yaml,systems/*.yaml"
)
HTML_URL = "https://github.com/acme/backstage-examples"


class ExampleFiles:
    """The examples folder as a FileSource (read and list, like a git commit)."""

    def __init__(self, root: Path = EXAMPLES) -> None:
        self.root = root

    def read(self, path: str) -> bytes | None:
        target = self.root / path
        return target.read_bytes() if target.is_file() else None

    def list(self, directory: str) -> list[str]:
        base = self.root / directory if directory else self.root
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.iterdir() if p.is_file())


def file_url(path: str, html_url: str = HTML_URL) -> str:
    return f"{html_url}/blob/main/{path}"


def example_changes(html_url: str = HTML_URL) -> list[EntityChanged]:
    """The entity changes of every example reachable from the roots, in reading order."""
    changes: list[EntityChanged] = []
    files = ExampleFiles()
    every = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*") if p.is_file())
    roots = find_catalog_files(
        [TreeEntry(path=p, object_id="", size=0) for p in every], CATALOG_FILES.split(",")
    )
    readings = {}
    reached: set[str] = set()
    for root in roots:
        if root in reached:
            continue
        readings[root] = read_catalog(root, files, lambda p: file_url(p, html_url))
        reached.update(p for p in readings[root].files_read if p != root)
    for root, reading in readings.items():
        if root in reached:
            continue
        target = file_url(root, html_url)
        for entity in reading.entities:
            body = entity.to_backstage()
            body.pop("relations", None)
            body.pop("status", None)
            changes.append(
                EntityChanged(
                    ref=str(entity.ref),
                    location_id=location_id(target),
                    location_target=target,
                    entity=body,
                    relations=[
                        RelationRecord(
                            source_ref=e.source_ref, type=e.type, target_ref=e.target_ref
                        )
                        for e in derive_relations(entity)
                    ],
                )
            )
    return changes
