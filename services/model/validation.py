"""Entity validation with Backstage's rules, reported as sentences that name the field.

What is checked, and where Backstage defines it:
- the envelope: a mapping with `apiVersion`, `kind`, `metadata` and no top-level keys other
  than `spec`, `relations` and `status` (Entity.schema.json, NoForeignRootFieldsEntityPolicy);
- the kind: one of the eight built-in kinds, with apiVersion `backstage.io/v1alpha1` or
  `backstage.io/v1beta1` (the kind schemas in catalog-model's `schema/kinds/`);
- metadata formats: name, namespace, labels, annotations, tags and links
  (FieldFormatEntityPolicy with the default `makeValidator()` rules);
- the spec fields each kind requires or types, as in its JSON schema; and every entity
  reference in the spec must parse, since Backstage fails processing when one does not
  (BuiltinKindsEntityProcessor).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from services.model.refs import DEFAULT_NAMESPACE, InvalidRef, parse_ref
from services.model.relations import REFERENCE_FIELDS, reference_values

API_VERSIONS = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
KINDS = ("API", "Component", "Domain", "Group", "Location", "Resource", "System", "User")
ROOT_FIELDS = ("apiVersion", "kind", "metadata", "spec", "relations", "status")

_OBJECT_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_LABEL = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_TAG = re.compile(r"^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")

_NAME_RULE = "1 to 63 characters: letters and digits, separated by any of [-_.]"
_NAMESPACE_RULE = "1 to 63 characters: lower-case letters and digits, separated by [-]"
_TAG_RULE = "1 to 63 characters: lower-case letters, digits and [:+#], separated by [-]"
_KEY_RULE = (
    "an optional DNS-subdomain prefix and a slash, then a name of "
    "1 to 63 letters and digits separated by any of [-_.]"
)

# Spec fields per kind: (field, shape, required), shape "string" or "list" (of strings).
_SPEC_FIELDS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "Component": (
        ("type", "string", True),
        ("lifecycle", "string", True),
        ("owner", "string", True),
        ("system", "string", False),
        ("subcomponentOf", "string", False),
        ("providesApis", "list", False),
        ("consumesApis", "list", False),
        ("dependsOn", "list", False),
        ("dependencyOf", "list", False),
    ),
    "API": (
        ("type", "string", True),
        ("lifecycle", "string", True),
        ("owner", "string", True),
        ("definition", "string", True),
        ("system", "string", False),
    ),
    "Resource": (
        ("type", "string", True),
        ("owner", "string", True),
        ("dependsOn", "list", False),
        ("dependencyOf", "list", False),
        ("system", "string", False),
    ),
    "System": (("owner", "string", True), ("domain", "string", False)),
    "Domain": (("owner", "string", True), ("subdomainOf", "string", False)),
    "Group": (
        ("type", "string", True),
        ("children", "list", True),
        ("parent", "string", False),
        ("members", "list", False),
    ),
    "User": (("memberOf", "list", True),),
    "Location": (
        ("type", "string", False),
        ("target", "string", False),
        ("targets", "list", False),
    ),
}


def is_valid_object_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(_OBJECT_NAME.match(value))


def is_valid_dns_label(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and bool(_DNS_LABEL.match(value))


def is_valid_dns_subdomain(value: object) -> bool:
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 253
        and all(is_valid_dns_label(part) for part in value.split("."))
    )


def is_valid_tag(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 63 and bool(_TAG.match(value))


def is_valid_key(value: object) -> bool:
    """Label and annotation keys: `[<dns-subdomain>/]<object-name>`."""
    if not isinstance(value, str):
        return False
    parts = value.split("/")
    if len(parts) == 1:
        return is_valid_object_name(parts[0])
    if len(parts) == 2:
        return is_valid_dns_subdomain(parts[0]) and is_valid_object_name(parts[1])
    return False


def is_valid_url(value: object) -> bool:
    """An absolute URL, roughly as the WHATWG URL parser Backstage uses would accept it."""
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    if not parts.scheme or not _URL_SCHEME.match(parts.scheme):
        return False
    if parts.scheme.lower() in {"http", "https", "ws", "wss", "ftp"}:
        host = parts.hostname or ""
        return bool(host) and not any(ch.isspace() for ch in parts.netloc)
    return True


def _quote(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def validate_entity(raw: object) -> list[str]:
    """Every reason `raw` is not a valid catalog entity, one sentence each; [] if valid."""
    if not isinstance(raw, Mapping):
        return [
            f"The document is a {_type_name(raw)}, not a mapping; an entity needs "
            "apiVersion, kind and metadata."
        ]
    if not any(key in raw for key in ("apiVersion", "kind", "metadata")):
        return ["The document is not a catalog entity: it has no apiVersion, kind or metadata."]
    errors: list[str] = []
    for key in raw:
        if key not in ROOT_FIELDS:
            errors.append(
                f'Unknown top-level field "{key}"; an entity may only have '
                "apiVersion, kind, metadata, spec, relations and status."
            )

    api_version = raw.get("apiVersion")
    kind = raw.get("kind")
    if api_version is None:
        errors.append('apiVersion is missing; use "backstage.io/v1alpha1".')
    elif not isinstance(api_version, str) or not api_version:
        errors.append("apiVersion must be a non-empty string.")
    if kind is None:
        errors.append("kind is missing; it says what the entity is, e.g. Component.")
    elif not isinstance(kind, str) or not kind:
        errors.append("kind must be a non-empty string.")
    elif kind not in KINDS:
        errors.append(
            f"Unknown kind {_quote(kind)}; Cairn accepts "
            "API, Component, Domain, Group, Location, Resource, System and User."
        )
    elif isinstance(api_version, str) and api_version and api_version not in API_VERSIONS:
        errors.append(
            f"apiVersion {_quote(api_version)} is not supported for kind {kind}; "
            f'use "{API_VERSIONS[0]}" or "{API_VERSIONS[1]}".'
        )

    metadata = raw.get("metadata")
    namespace = DEFAULT_NAMESPACE
    if metadata is None:
        errors.append("metadata is missing; every entity needs metadata.name.")
    elif not isinstance(metadata, Mapping):
        errors.append("metadata must be a mapping.")
    else:
        errors.extend(_validate_metadata(metadata))
        if is_valid_dns_label(metadata.get("namespace")):
            namespace = str(metadata["namespace"])

    if isinstance(kind, str) and kind in _SPEC_FIELDS:
        spec = raw.get("spec")
        if spec is None:
            errors.append(f"spec is missing; kind {kind} needs one.")
        elif not isinstance(spec, Mapping):
            errors.append("spec must be a mapping.")
        else:
            errors.extend(_validate_spec(kind, spec, namespace))
    elif "spec" in raw and not isinstance(raw.get("spec"), Mapping):
        errors.append("spec must be a mapping.")
    if "relations" in raw and not isinstance(raw.get("relations"), list):
        errors.append("relations must be a list.")
    if "status" in raw and not isinstance(raw.get("status"), Mapping):
        errors.append("status must be a mapping.")
    return errors


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return type(value).__name__


def _validate_metadata(metadata: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    name = metadata.get("name")
    if name is None:
        errors.append("metadata.name is missing; every entity needs a name.")
    elif not is_valid_object_name(name):
        errors.append(f"metadata.name {_quote(name)} is not valid; it must be {_NAME_RULE}.")

    if "namespace" in metadata and not is_valid_dns_label(metadata["namespace"]):
        errors.append(
            f"metadata.namespace {_quote(metadata['namespace'])} is not valid; "
            f"it must be {_NAMESPACE_RULE}."
        )
    for field in ("title", "description"):
        if field in metadata and not isinstance(metadata[field], str):
            errors.append(f"metadata.{field} must be a string.")

    errors.extend(
        _validate_pairs(metadata, "labels", _is_valid_label_value, f"empty or {_NAME_RULE}")
    )
    errors.extend(_validate_pairs(metadata, "annotations", _is_string, "a string"))

    if "tags" in metadata:
        tags = metadata["tags"]
        if not isinstance(tags, list):
            errors.append("metadata.tags must be a list of strings.")
        else:
            for index, tag in enumerate(tags):
                if not is_valid_tag(tag):
                    errors.append(
                        f"metadata.tags[{index}] {_quote(tag)} is not a valid tag; "
                        f"a tag must be {_TAG_RULE}."
                    )

    if "links" in metadata:
        links = metadata["links"]
        if not isinstance(links, list):
            errors.append("metadata.links must be a list of {url, title, icon} mappings.")
        else:
            for index, link in enumerate(links):
                errors.extend(_validate_link(index, link))
    return errors


def _is_valid_label_value(value: object) -> bool:
    return value == "" or is_valid_object_name(value)


def _is_string(value: object) -> bool:
    return isinstance(value, str)


def _validate_pairs(
    metadata: Mapping[str, Any], field: str, valid_value: Callable[[object], bool], rule: str
) -> list[str]:
    if field not in metadata:
        return []
    pairs = metadata[field]
    if not isinstance(pairs, Mapping):
        return [f"metadata.{field} must be a mapping of keys to string values."]
    errors: list[str] = []
    for key, value in pairs.items():
        if not is_valid_key(key):
            errors.append(
                f"metadata.{field} key {_quote(key)} is not valid; it must be {_KEY_RULE}."
            )
        if not valid_value(value):
            errors.append(
                f"metadata.{field}.{key} has the value {_quote(value)}, which is not valid; "
                f"it must be {rule}."
            )
    return errors


def _validate_link(index: int, link: object) -> list[str]:
    where = f"metadata.links[{index}]"
    if not isinstance(link, Mapping):
        return [f"{where} must be a mapping with at least a url."]
    errors: list[str] = []
    url = link.get("url")
    if url is None:
        errors.append(f"{where}.url is missing.")
    elif not is_valid_url(url):
        errors.append(f"{where}.url {_quote(url)} is not a valid absolute URL.")
    title = link.get("title")
    if title is not None and not (isinstance(title, str) and title.strip()):
        errors.append(f"{where}.title must be a non-empty string.")
    icon = link.get("icon")
    if icon is not None and not is_valid_object_name(icon):
        errors.append(f"{where}.icon {_quote(icon)} is not valid; it must be {_NAME_RULE}.")
    return errors


def _validate_spec(kind: str, spec: Mapping[str, Any], namespace: str) -> list[str]:
    errors: list[str] = []
    for field, shape, required in _SPEC_FIELDS[kind]:
        where = f"spec.{field}"
        if field not in spec or spec[field] is None:
            if required:
                what = "a list" if shape == "list" else "a value"
                errors.append(f"{where} is missing; kind {kind} requires {what} there.")
            elif field in spec:
                errors.append(f"{where} must not be null; leave it out instead.")
            continue
        value = spec[field]
        if shape == "string":
            if not isinstance(value, str) or not value:
                errors.append(f"{where} must be a non-empty string.")
        elif not isinstance(value, list):
            errors.append(f"{where} must be a list of non-empty strings.")
        else:
            for index, item in enumerate(value):
                if not isinstance(item, str) or not item:
                    errors.append(f"{where}[{index}] must be a non-empty string.")

    for ref_field in REFERENCE_FIELDS.get(kind, ()):
        values = reference_values(spec.get(ref_field.field))
        many = isinstance(spec.get(ref_field.field), list)
        for index, value in enumerate(values):
            if not isinstance(value, str) or not value:
                continue  # reported above as a type error
            where = f"spec.{ref_field.field}" + (f"[{index}]" if many else "")
            try:
                parse_ref(value, default_kind=ref_field.default_kind, default_namespace=namespace)
            except InvalidRef as exc:
                if ref_field.default_kind is None and _has_no_kind(value):
                    errors.append(
                        f"{where} {_quote(value)} has no kind, and {ref_field.field} has no "
                        f'default kind; name it, e.g. "resource:{value}".'
                    )
                else:
                    errors.append(f"{where} is not a valid entity reference: {exc}")
    return errors


def _has_no_kind(value: str) -> bool:
    try:
        parse_ref(value, default_kind="placeholder-kind")
    except InvalidRef:
        return False
    return True
