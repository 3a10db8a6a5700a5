"""Entities in the shape Backstage's catalog returns them: the stored body, then `relations`,
and processing errors as `status.items`.

A list page writes most entities out as they were stored, so a document without errors is
rendered by splicing its relations into the body's stored JSON text instead of parsing and
re-serialising it (the catalog API's pages spent most of their time doing that).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from services.model.catalog import EntityDocument, StoredEntity
from services.model.entity import STATUS_PROCESSING_TYPE
from services.model.events import ErrorRecord


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _render(
    body: dict[str, Any], relations: Iterable[tuple[str, str]], errors: list[ErrorRecord]
) -> dict[str, Any]:
    output: dict[str, Any] = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": body.get("metadata"),
        "spec": body.get("spec", {}),
    }
    for key, value in body.items():
        if key not in output:
            output[key] = value
    output["relations"] = [{"type": kind, "targetRef": target} for kind, target in relations]
    if errors:
        status = output.get("status")
        status = dict(status) if isinstance(status, dict) else {}
        status["items"] = [
            {
                "type": STATUS_PROCESSING_TYPE,
                "level": "error",
                "message": f"InputError: {error.message}",
                "error": {"name": "InputError", "message": error.message},
            }
            for error in errors
        ]
        output["status"] = status
    return output


def render_entity(stored: StoredEntity) -> dict[str, Any]:
    """The entity exactly as Backstage's catalog returns it (its keys in Backstage's order).

    Same output as queries.backstage_entity, built without copying the stored body.
    """
    return _render(stored.body, ((r.type, r.target_ref) for r in stored.relations), stored.errors)


def render_document(document: EntityDocument) -> dict[str, Any]:
    """As render_entity, for a document (parsing its body)."""
    return _render(document.body, document.relations, document.errors)


def document_json(document: EntityDocument) -> str:
    """The document as render_document's JSON; spliced from the stored text when that gives
    the same object: no errors to merge into `status`, no `relations` key of its own, and
    `spec` present (render_document adds an empty one)."""
    text = document.body_json.rstrip()
    if (
        document.errors_json.strip() not in ("[]", "")
        or '"relations"' in text
        or '"spec"' not in text
        or not text.endswith("}")
    ):
        return dumps(render_document(document))
    return f'{text[:-1].rstrip()},"relations":{document.relations_json}}}'
