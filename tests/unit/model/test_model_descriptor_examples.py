"""Reading Backstage's own example descriptors (shared/data/backstage-examples, unchanged).

What the folder holds and which files Backstage itself rejects is described in its
SOURCE.md; the expectations here follow it. On top of Backstage's rejections, Cairn rejects
the 11 APIs whose `$text` placeholder points to a remote URL, since it reads placeholder
files only from the same repository.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.model.descriptor import FileSource, LocationReading, read_catalog
from services.model.entity import ANNOTATION_LOCATION, ANNOTATION_ORIGIN_LOCATION

# Same place the `examples` fixture reads (see conftest.py); needed here at collection time.
EXAMPLES = Path(
    os.environ.get("CAIRN_BACKSTAGE_EXAMPLES")
    or Path(__file__).resolve().parents[3].parent / "shared/data/backstage-examples"
)


def location_url(path: str) -> str:
    return f"https://git.example.test/acme/catalog/blob/main/{path}"


NOT_ENTITIES = {"apis/petstore.oas.yaml", "apis/petstore-webhook.oas.yaml"}
REMOTE_PLACEHOLDER_APIS = [
    "analytics-api",
    "aware-core-insight-api",
    "aware-producer-service-api",
    "config-schema-api",
    "mapping-api",
    "maps-analytics-api",
    "odp-analytics-api",
    "spotify-api",
    "wayback-archive-api",
    "wayback-search-api",
    "workplace-api",
]
MISSING_LIFECYCLE_AND_OWNER = ["spec.lifecycle is missing", "spec.owner is missing"]
# File -> the start of each error recorded against it, in order.
EXPECTED_PROBLEMS: dict[str, list[str]] = {
    "components/invalid-component.yaml": [
        'metadata.name "invalid component" is not valid',
        'metadata.tags[1] "go 1.15.3" is not a valid tag',
    ],
    "apis/backstage-mcp-server-api.yaml": ["spec.definition is missing"],
    "apis/local-ai-model-server-api.yaml": ["spec.definition is missing"],
    "legacy/hello-world-api.yaml": MISSING_LIFECYCLE_AND_OWNER,
    "legacy/streetlights-api.yaml": MISSING_LIFECYCLE_AND_OWNER,
    "legacy/swapi-graphql.yaml": MISSING_LIFECYCLE_AND_OWNER,
    "legacy/spotify-api.yaml": ["spec.definition is missing"],
    "all.yaml": ["Location target ./all-ai-resources.yaml refers to all-ai-resources.yaml"],
    **{
        f"apis/{name}.yaml": ["Placeholder $text in spec.definition refers to https://"]
        for name in REMOTE_PLACEHOLDER_APIS
    },
}
REJECTED_FILES = set(EXPECTED_PROBLEMS) - {"all.yaml"}  # single-entity files, entity refused


def all_yaml_files() -> list[str]:
    return sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.yaml"))


def descriptor_files() -> list[str]:
    return [path for path in all_yaml_files() if path not in NOT_ENTITIES]


def documents(path: str) -> list[dict[str, Any]]:
    """The file's entities as plain PyYAML reads them: independent of the code under test."""
    with open(EXAMPLES / path, encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def ref_of(doc: dict[str, Any]) -> str:
    namespace = doc["metadata"].get("namespace", "default")
    return f"{doc['kind']}:{namespace}/{doc['metadata']['name']}".lower()


def own_entities(reading: LocationReading, path: str) -> list[str]:
    return [
        str(entity.ref)
        for entity in reading.entities
        if entity.metadata["annotations"][ANNOTATION_LOCATION] == f"url:{location_url(path)}"
    ]


def test_the_examples_hold_the_files_and_entities_source_md_describes() -> None:
    assert len(all_yaml_files()) == 82
    assert len(descriptor_files()) == 80
    assert sum(len(documents(path)) for path in descriptor_files()) == 98


@pytest.mark.parametrize("path", descriptor_files())
def test_every_example_file_is_read_with_exactly_its_known_problems(
    path: str, examples: FileSource
) -> None:
    reading = read_catalog(path, examples, location_url)

    own_errors = [error for error in reading.errors if error.path == path]
    expected = EXPECTED_PROBLEMS.get(path, [])
    assert len(own_errors) == len(expected), [e.message for e in own_errors]
    for error, start in zip(own_errors, expected, strict=True):
        assert error.message.startswith(start)
        assert error.location == location_url(path)

    refs = [ref_of(doc) for doc in documents(path)]
    if path in REJECTED_FILES:
        assert own_entities(reading, path) == []
        assert {error.entity_ref for error in own_errors} == set(refs)
    else:
        assert own_entities(reading, path) == refs


@pytest.mark.parametrize("path", sorted(NOT_ENTITIES))
def test_an_openapi_document_read_as_a_descriptor_is_one_clear_error(
    path: str, examples: FileSource
) -> None:
    reading = read_catalog(path, examples, location_url)
    assert reading.entities == []
    (error,) = reading.errors
    assert "is not a catalog entity" in error.message
    assert error.entity_ref is None


def test_eighty_of_the_ninety_eight_example_entities_are_accepted(examples: FileSource) -> None:
    accepted = 0
    for path in descriptor_files():
        accepted += len(own_entities(read_catalog(path, examples, location_url), path))
    assert accepted == 98 - len(REJECTED_FILES) == 80


def test_invalid_component_is_recorded_against_its_location_and_the_rest_is_read(
    make_source: Callable[..., FileSource],
) -> None:
    targets = [
        "components/podcast-api-component.yaml",
        "components/invalid-component.yaml",
        "components/queue-proxy-component.yaml",
    ]
    files: dict[str, str | bytes] = {path: (EXAMPLES / path).read_bytes() for path in targets}
    files["catalog-info.yaml"] = (
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: podcast\n"
        "spec:\n  targets:\n" + "".join(f"    - ./{path}\n" for path in targets)
    )
    reading = read_catalog("catalog-info.yaml", make_source(files), location_url)

    assert [str(e.ref) for e in reading.entities] == [
        "location:default/podcast",
        "component:default/podcast-api",
        "component:default/queue-proxy",
    ]
    assert [(e.location, e.entity_ref) for e in reading.errors] == [
        (location_url("components/invalid-component.yaml"), "component:default/invalid component")
    ] * 2


def test_all_yaml_followed_through_its_locations_yields_every_entity_it_reaches(
    examples: FileSource,
) -> None:
    reading = read_catalog("all.yaml", examples, location_url)

    expected_files = ["all.yaml"]
    for listing in ["all-apis", "all-components", "all-domains", "all-resources", "all-systems"]:
        expected_files.append(f"{listing}.yaml")
        expected_files.extend(
            t.removeprefix("./") for t in documents(f"{listing}.yaml")[0]["spec"]["targets"]
        )
    assert sorted(reading.files_read) == sorted(expected_files)
    assert len(reading.files_read) == 26

    remote_apis = {
        ref_of(doc)
        for path in expected_files
        if path.startswith("apis/")
        for doc in documents(path)
    }
    assert len(remote_apis) == 7
    defined = [ref_of(doc) for path in reading.files_read for doc in documents(path)]
    assert sorted(str(e.ref) for e in reading.entities) == sorted(
        ref for ref in defined if ref not in remote_apis
    )
    assert len(reading.entities) == 19

    assert sorted((e.path, e.entity_ref) for e in reading.errors) == sorted(
        [("all.yaml", "location:default/example-all")]
        + [
            (path, ref_of(documents(path)[0]))
            for path in expected_files
            if path.startswith("apis/")
        ]
    )
    for entity in reading.entities:
        annotations = entity.metadata["annotations"]
        assert annotations[ANNOTATION_ORIGIN_LOCATION] == f"url:{location_url('all.yaml')}"
        assert entity.metadata["uid"] and entity.metadata["etag"]


def test_all_yaml_and_the_acme_org_together_reach_34_files(examples: FileSource) -> None:
    everything = read_catalog("all.yaml", examples, location_url).files_read
    everything += read_catalog("acme/org.yaml", examples, location_url).files_read
    assert len(set(everything)) == 34


def test_acme_org_reads_every_group_and_user_it_lists(examples: FileSource) -> None:
    reading = read_catalog("acme/org.yaml", examples, location_url)
    assert reading.errors == []
    kinds = [entity.kind for entity in reading.entities]
    assert (kinds.count("Group"), kinds.count("User"), kinds.count("Location")) == (8, 17, 1)
    refs = {str(entity.ref) for entity in reading.entities}
    assert {"user:default/guest", "user:development/guest"} <= refs
    assert "group:default/team-e" not in refs  # not listed by the Location


def test_location_with_a_remote_target_is_kept_and_its_target_returned(
    examples: FileSource,
) -> None:
    reading = read_catalog("legacy/acme-corp.yaml", examples, location_url)
    assert reading.errors == []
    assert [str(e.ref) for e in reading.entities] == ["location:default/acme-corp"]
    (external,) = reading.external_targets
    assert external.type == "github"
    assert external.target.startswith("https://github.com/spotify/backstage/")
    assert external.entity_ref == "location:default/acme-corp"


def test_text_placeholder_reads_the_sibling_file(examples: FileSource) -> None:
    reading = read_catalog("apis/petstore-webhook-api.yaml", examples, location_url)
    assert reading.errors == []
    (api,) = reading.entities
    sibling = (EXAMPLES / "apis/petstore-webhook.oas.yaml").read_text(encoding="utf-8")
    assert api.spec["definition"] == sibling
    assert reading.files_read == [
        "apis/petstore-webhook-api.yaml",
        "apis/petstore-webhook.oas.yaml",
    ]


def test_legacy_copy_of_an_entity_is_a_duplicate_and_the_first_is_kept(
    make_source: Callable[..., FileSource],
) -> None:
    paths = ["components/petstore-component.yaml", "legacy/petstore-component.yaml"]
    files: dict[str, str | bytes] = {path: (EXAMPLES / path).read_bytes() for path in paths}
    files["catalog-info.yaml"] = (
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: both}\n"
        f"spec: {{targets: [./{paths[0]}, ./{paths[1]}]}}\n"
    )
    reading = read_catalog("catalog-info.yaml", make_source(files), location_url)
    (petstore,) = [e for e in reading.entities if e.kind == "Component"]
    assert petstore.spec["owner"] == "sre"  # the first definition
    (error,) = reading.errors
    assert error.path == "legacy/petstore-component.yaml"
    assert error.entity_ref == "component:default/petstore"
    assert "already defined in components/petstore-component.yaml" in error.message


def test_older_group_fields_are_accepted(examples: FileSource) -> None:
    reading = read_catalog("acme/boxoffice-group.yaml", examples, location_url)
    assert reading.errors == []
    assert reading.entities[0].spec["ancestors"] == ["infrastructure", "acme-corp"]
