"""Entities flattened into search rows, and rendered in Backstage's shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from search_api.backstage_entities import document_json, render_document, render_entity
from search_api.queries import backstage_entity, generated_location_ref
from services.model.catalog import EntityDocument, StoredEntity
from services.model.events import ErrorRecord, RelationRecord
from services.store.entity_search import SearchEntry, build_search_entries


def test_an_entity_flattens_like_backstages_search_table() -> None:
    entries = build_search_entries(
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {
                "name": "Payments",
                "uid": "u-1",
                "etag": "e-1",
                "tags": ["Java", "java", "data"],
                "annotations": {"backstage.io/techdocs-ref": "dir:."},
                "description": None,
            },
            "spec": {"replicas": 3, "ratio": 1.0, "public": True, "ports": [{"port": 80}]},
            "status": {"items": []},
        }
    )
    rows = {(e.key, e.value, e.original_value) for e in entries}
    assert ("kind", "component", "Component") in rows
    assert ("metadata.name", "payments", "Payments") in rows
    assert ("metadata.namespace", "default", "default") in rows
    assert ("metadata.uid", "u-1", "u-1") in rows
    assert ("metadata.tags", "java", "Java") in rows and ("metadata.tags", "java", "java") in rows
    assert ("metadata.tags.java", "true", "true") in rows
    assert ("metadata.tags.data", "true", "true") in rows
    assert ("metadata.annotations.backstage.io/techdocs-ref", "dir:.", "dir:.") in rows
    assert ("metadata.description", None, None) in rows
    assert ("spec.replicas", "3", "3") in rows and ("spec.ratio", "1", "1") in rows
    assert ("spec.public", "true", "true") in rows and ("spec.ports.port", "80", "80") in rows
    assert not [e for e in entries if e.key.startswith(("status", "metadata.etag", "relations"))]
    assert len(entries) == len(set(entries))


def test_long_keys_are_dropped_and_long_values_become_null() -> None:
    entries = build_search_entries(
        {
            "kind": "Component",
            "metadata": {"name": "a", "namespace": "x"},
            "spec": {"k" * 300: "v", "long": "v" * 201},
        }
    )
    assert SearchEntry("spec.long", None, None) in entries
    assert not [e for e in entries if len(e.key) > 200]


def test_rendering_matches_the_backstage_entity_shape() -> None:
    stored = StoredEntity(
        ref="component:default/a",
        kind="Component",
        namespace="default",
        name="a",
        uid="u",
        etag="e",
        body={
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "a", "namespace": "default", "uid": "u", "etag": "e"},
            "spec": {"type": "service"},
        },
        location_id="l",
        location_target="t",
        version=1,
        updated_at=datetime.now(UTC),
        errors=[ErrorRecord(message="broken", location="t")],
        relations=[
            RelationRecord(
                source_ref="component:default/a", type="ownedBy", target_ref="group:default/x"
            )
        ],
    )
    rendered = render_entity(stored)
    assert rendered == backstage_entity(stored)
    assert list(rendered) == ["apiVersion", "kind", "metadata", "spec", "relations", "status"]
    assert rendered["status"]["items"][0]["error"] == {"name": "InputError", "message": "broken"}


def test_a_registered_location_gets_backstages_generated_entity_ref() -> None:
    ref = generated_location_ref("url", "https://github.com/acme/a/blob/main/catalog-info.yaml")
    assert ref.startswith("location:default/generated-") and len(ref.split("-", 1)[1]) == 40


def _document(body: dict, errors: list | None = None, body_json: str | None = None):
    return EntityDocument(
        ref="component:default/a",
        kind="Component",
        namespace="default",
        name="a",
        uid="u",
        body_json=body_json if body_json is not None else json.dumps(body),
        errors_json=json.dumps(errors or []),
        relations_json=json.dumps(
            [
                {"type": "dependsOn", "targetRef": "resource:default/db"},
                {"type": "ownedBy", "targetRef": "group:default/x"},
            ]
        ),
    )


BODY = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "a", "description": 'quoted "relations" and ünïcode'},
    "spec": {"type": "service"},
}


def test_a_document_is_spliced_into_the_same_json_as_rendering_it() -> None:
    document = _document(BODY)
    text = document_json(document)
    assert json.loads(text) == render_document(document)
    assert json.loads(text)["relations"][1] == {"type": "ownedBy", "targetRef": "group:default/x"}


def test_jsonb_printed_bodies_and_pretty_text_splice_too() -> None:
    jsonb_text = json.dumps(BODY, indent=2) + "\n"
    document = _document(BODY, body_json=jsonb_text)
    assert json.loads(document_json(document)) == render_document(document)


def test_documents_the_splice_cannot_render_alike_are_rendered_whole() -> None:
    with_errors = _document(BODY, errors=[{"message": "broken", "location": "t"}])
    own_relations = _document({**BODY, "relations": [{"type": "x", "targetRef": "y"}]})
    without_spec = _document({k: v for k, v in BODY.items() if k != "spec"})
    empty = _document({}, body_json="{}")
    for document in (with_errors, own_relations, without_spec, empty):
        assert json.loads(document_json(document)) == render_document(document)
    rendered = json.loads(document_json(with_errors))
    assert rendered["status"]["items"][0]["error"]["message"] == "broken"
    assert json.loads(document_json(without_spec))["spec"] == {}
    assert [r["type"] for r in json.loads(document_json(own_relations))["relations"]] == [
        "dependsOn",
        "ownedBy",
    ]
