"""Opaque pagination cursors shared by the index adapters."""

from __future__ import annotations

import base64
import json
from typing import Any

from services.index.port import InvalidQuery


def encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidQuery("cursor", "The cursor is not one this API returned.") from exc
    if not isinstance(state, dict):
        raise InvalidQuery("cursor", "The cursor is not one this API returned.")
    return state
