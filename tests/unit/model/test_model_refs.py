"""Entity refs parse and print as Backstage's parseEntityRef and stringifyEntityRef do."""

from __future__ import annotations

import pytest

from services.model.refs import EntityRef, InvalidRef, parse_ref


def test_full_ref_keeps_every_part() -> None:
    assert parse_ref("a:b/c") == EntityRef("a", "b", "c")
    assert parse_ref("a:b/c").namespace == "b"


def test_missing_namespace_takes_the_default_namespace() -> None:
    assert parse_ref("a:c").namespace == "default"
    assert parse_ref("a:c", default_namespace="y").namespace == "y"


def test_missing_kind_takes_the_default_kind() -> None:
    ref = parse_ref("b/c", default_kind="x", default_namespace="y")
    assert (ref.kind, ref.namespace, ref.name) == ("x", "b", "c")
    ref = parse_ref("c", default_kind="x", default_namespace="y")
    assert (ref.kind, ref.namespace, ref.name) == ("x", "y", "c")


def test_explicit_parts_win_over_defaults() -> None:
    ref = parse_ref("a:b/c", default_kind="x", default_namespace="y")
    assert (ref.kind, ref.namespace, ref.name) == ("a", "b", "c")


@pytest.mark.parametrize("text", ["c", "b/c"])
def test_ref_without_kind_and_without_default_kind_is_refused(text: str) -> None:
    with pytest.raises(InvalidRef, match="no kind"):
        parse_ref(text)


@pytest.mark.parametrize(
    "text", [":b/c", "a:/c", "a:b/", "a:/", ":b/", ":/c", ":/", "/c", "b/", ":c", "a:", ""]
)
def test_ref_with_an_empty_part_is_refused(text: str) -> None:
    with pytest.raises(InvalidRef):
        parse_ref(text, default_kind="x")


def test_name_may_contain_colons_and_slashes_after_the_namespace() -> None:
    # Backstage parses everything after the first "/" as the name.
    assert parse_ref("component:default/foo:bar").name == "foo:bar"
    assert parse_ref("a:b/c/d").name == "c/d"
    # A "/" ahead of the first ":" means the ref has no kind.
    ref = parse_ref("a/b:c", default_kind="x")
    assert (ref.kind, ref.namespace, ref.name) == ("x", "a", "b:c")


def test_compound_refs_use_defaults_for_missing_parts() -> None:
    ref = parse_ref({"name": "c"}, default_kind="x", default_namespace="y")
    assert (ref.kind, ref.namespace, ref.name) == ("x", "y", "c")
    ref = parse_ref({"kind": "a", "name": "c"})
    assert (ref.kind, ref.namespace, ref.name) == ("a", "default", "c")


@pytest.mark.parametrize(
    ("compound", "word"),
    [
        ({"kind": "", "namespace": "b", "name": "c"}, "kind"),
        ({"kind": "a", "namespace": "", "name": "c"}, "namespace"),
        ({"kind": "a", "namespace": "b", "name": ""}, "name"),
        ({"kind": "a", "namespace": "b"}, "name"),
    ],
)
def test_compound_ref_with_an_empty_part_is_refused_even_with_defaults(
    compound: dict[str, str], word: str
) -> None:
    with pytest.raises(InvalidRef, match=word):
        parse_ref(compound, default_kind="x", default_namespace="y")


def test_string_form_is_lower_cased_like_stringify_entity_ref() -> None:
    ref = parse_ref("Component:Default/MyService")
    assert str(ref) == "component:default/myservice"
    assert ref.name == "MyService"  # the parts keep their case


def test_refs_compare_case_insensitively() -> None:
    assert parse_ref("k:nS/N") == parse_ref("K:ns/n")
    assert hash(parse_ref("k:nS/N")) == hash(parse_ref("K:ns/n"))
    assert parse_ref("K:ns/n").key == "k:ns/n"
    assert parse_ref("K:ns/n") != parse_ref("K:ns/m")


def test_invalid_ref_is_a_value_error_with_the_ref_in_its_message() -> None:
    with pytest.raises(ValueError, match='"artists-db"'):
        parse_ref("artists-db")
