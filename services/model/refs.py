"""Entity references: `[<kind>:][<namespace>/]<name>`, as Backstage writes and compares them.

Parsing follows Backstage's `parseEntityRef`: the first `:` ends the kind unless a `/`
comes before it, the first `/` ends the namespace, and everything after that is the name
(so a name may itself contain `:` or `/`). Missing parts come from the caller's defaults;
empty parts are errors, never defaults. The string form lower-cases all three parts,
exactly like Backstage's `stringifyEntityRef`, and refs compare case-insensitively.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_NAMESPACE = "default"


class InvalidRef(ValueError):
    """A reference that cannot name an entity; the message says which part is wrong."""


@dataclass(frozen=True, eq=False)
class EntityRef:
    """A complete reference. Parts keep the case they were written in; `key` does not.

    Equality and hashing use `key`, so `Component:default/Foo` equals `component:default/foo`.
    """

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        # Backstage's stringifyEntityRef lower-cases kind, namespace *and* name.
        return f"{self.kind.lower()}:{self.namespace.lower()}/{self.name.lower()}"

    @property
    def key(self) -> str:
        """The canonical, fully lower-cased form used for lookup and equality."""
        return str(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntityRef):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


def _describe(ref: object) -> str:
    try:
        return json.dumps(ref, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(ref)


def _split(text: str) -> tuple[str | None, str | None, str]:
    colon = text.find(":")
    slash = text.find("/")
    if slash != -1 and slash < colon:
        # A slash ahead of the first colon means there is no kind; the colon is in the name.
        colon = -1
    kind = text[:colon] if colon != -1 else None
    namespace = text[colon + 1 : slash] if slash != -1 else None
    name = text[max(colon + 1, slash + 1) :]
    if kind == "" or namespace == "" or name == "":
        raise InvalidRef(
            f"Entity reference {_describe(text)} is not of the form "
            "[<kind>:][<namespace>/]<name>; no part may be empty."
        )
    return kind, namespace, name


def parse_ref(
    text: str | Mapping[str, object],
    *,
    default_kind: str | None = None,
    default_namespace: str = DEFAULT_NAMESPACE,
) -> EntityRef:
    """Parse a string ref or a `{kind, namespace, name}` mapping into a complete EntityRef.

    Raises InvalidRef when the input is empty or malformed, or when no kind can be
    determined (the ref has none and no `default_kind` was given).
    """
    if not text:
        raise InvalidRef("Entity reference must not be empty.")
    namespace_default = default_namespace or DEFAULT_NAMESPACE
    kind: str | None
    namespace: str | None
    if isinstance(text, str):
        kind, namespace, name = _split(text)
    elif isinstance(text, Mapping):
        parts: dict[str, str | None] = {}
        for part in ("kind", "namespace", "name"):
            value = text.get(part)
            if value is not None and not isinstance(value, str):
                raise InvalidRef(
                    f"Entity reference {_describe(text)} has a {part} that is not a string."
                )
            parts[part] = value
        kind, namespace = parts["kind"], parts["namespace"]
        name = parts["name"] or ""
        if kind == "":
            raise InvalidRef(f"Entity reference {_describe(text)} has an empty kind.")
        if namespace == "":
            raise InvalidRef(f"Entity reference {_describe(text)} has an empty namespace.")
    else:
        raise InvalidRef(
            f"Entity reference {_describe(text)} must be a string or a mapping "
            "with kind, namespace and name."
        )

    kind = kind if kind is not None else default_kind
    namespace = namespace if namespace is not None else namespace_default
    if not kind:
        raise InvalidRef(
            f"Entity reference {_describe(text)} has no kind; write it with one, "
            'e.g. "component:' + (name or "name") + '".'
        )
    if not name:
        raise InvalidRef(f"Entity reference {_describe(text)} has a missing or empty name.")
    return EntityRef(kind=kind, namespace=namespace, name=name)
