"""Reading descriptors from an in-memory repository: Locations, placeholders, YAML and limits."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from services.model.descriptor import DescriptorLimits, FileSource, LocationReading, read_catalog
from services.model.entity import ANNOTATION_LOCATION, ANNOTATION_ORIGIN_LOCATION

Files = dict[str, str | bytes]
MakeSource = Callable[..., FileSource]


def location_url(path: str) -> str:
    return f"https://git.example.test/acme/repo/blob/main/{path}"


def component(name: str, **spec: Any) -> str:
    body = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a", **spec},
    }
    return json.dumps(body)  # JSON is YAML


def location(name: str, *targets: str, **spec: Any) -> str:
    body = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {"name": name},
        "spec": {"targets": list(targets), **spec},
    }
    return json.dumps(body)


def read(
    make_source: MakeSource,
    files: Files,
    root: str = "catalog-info.yaml",
    *,
    listable: bool = False,
    **limits: int,
) -> LocationReading:
    source = make_source(files, listable=listable)
    return read_catalog(root, source, location_url, DescriptorLimits(**limits))


def refs(reading: LocationReading) -> list[str]:
    return [str(entity.ref) for entity in reading.entities]


def messages(reading: LocationReading) -> list[str]:
    return [error.message for error in reading.errors]


# -- documents -----------------------------------------------------------------------------


def test_every_document_of_a_file_is_read_and_empty_documents_are_skipped(
    make_source: MakeSource,
) -> None:
    text = f"---\n{component('a')}\n---\n---\n# only a comment\n---\n{component('b')}\n"
    reading = read(make_source, {"catalog-info.yaml": text})
    assert refs(reading) == ["component:default/a", "component:default/b"]
    assert reading.errors == []


def test_entities_are_managed_by_their_own_file_and_originate_from_the_root(
    make_source: MakeSource,
) -> None:
    files: Files = {
        "catalog-info.yaml": location("root", "./svc/a.yaml"),
        "svc/a.yaml": component("a"),
    }
    reading = read(make_source, files)
    annotations = reading.entities[1].metadata["annotations"]
    assert annotations[ANNOTATION_LOCATION] == f"url:{location_url('svc/a.yaml')}"
    assert annotations[ANNOTATION_ORIGIN_LOCATION] == f"url:{location_url('catalog-info.yaml')}"


def test_root_path_is_normalised(make_source: MakeSource) -> None:
    reading = read(make_source, {"svc/catalog.yaml": component("a")}, root="./svc/catalog.yaml")
    assert refs(reading) == ["component:default/a"]
    assert reading.files_read == ["svc/catalog.yaml"]


def test_missing_root_file_is_an_error(make_source: MakeSource) -> None:
    reading = read(make_source, {})
    (error,) = reading.errors
    assert error.message == "Catalog file catalog-info.yaml does not exist in the repository."
    assert error.location == location_url("catalog-info.yaml")


def test_yaml_syntax_error_names_the_line_keeps_earlier_documents_and_other_files(
    make_source: MakeSource,
) -> None:
    broken = f"{component('first')}\n---\nkind: Component\nmetadata: {{name: x\n  bad: [\n"
    files: Files = {
        "catalog-info.yaml": location("root", "./broken.yaml", "./good.yaml"),
        "broken.yaml": broken,
        "good.yaml": component("good"),
    }
    reading = read(make_source, files)
    assert refs(reading) == [
        "location:default/root",
        "component:default/first",
        "component:default/good",
    ]
    (error,) = reading.errors
    assert error.path == "broken.yaml"
    assert error.location == location_url("broken.yaml")
    assert error.message.startswith("broken.yaml: YAML error at line 5")


def test_document_that_is_not_a_mapping_is_an_error(make_source: MakeSource) -> None:
    reading = read(make_source, {"catalog-info.yaml": f"- a\n- b\n---\n{component('ok')}\n"})
    assert refs(reading) == ["component:default/ok"]
    (error,) = reading.errors
    assert error.message.startswith(
        "Document 1 (line 1) of catalog-info.yaml: The document is a list"
    )
    assert error.entity_ref is None


def test_invalid_entity_errors_carry_its_ref(make_source: MakeSource) -> None:
    reading = read(make_source, {"catalog-info.yaml": component("Bad Name", owner="")})
    assert reading.entities == []
    assert [e.entity_ref for e in reading.errors] == ["component:default/bad name"] * 2


def test_dates_and_yes_no_stay_strings_as_in_yaml_1_2(make_source: MakeSource) -> None:
    text = (
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: jdoe\n"
        "  annotations: {example.com/on-call: yes}\n"
        "spec:\n  memberOf: []\n  profile: {startDateISO: 2021-11-10, remote: true}\n"
    )
    reading = read(make_source, {"catalog-info.yaml": text})
    assert reading.errors == []
    (user,) = reading.entities
    assert user.spec["profile"] == {"startDateISO": "2021-11-10", "remote": True}
    assert user.metadata["annotations"]["example.com/on-call"] == "yes"


def test_duplicate_keys_are_an_error_like_in_backstage(make_source: MakeSource) -> None:
    text = "apiVersion: backstage.io/v1alpha1\nkind: Group\nkind: User\nmetadata: {name: a}\n"
    reading = read(make_source, {"catalog-info.yaml": text})
    assert reading.entities == []
    assert messages(reading) == [
        'catalog-info.yaml: Duplicate key "kind" at line 3; each key may appear once in a mapping.'
    ]


def test_anchors_and_merge_keys_are_supported(make_source: MakeSource) -> None:
    text = (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\n"
        "spec:\n  <<: &common {type: service, lifecycle: production}\n  owner: team-a\n"
        "  copy: *common\n"
    )
    reading = read(make_source, {"catalog-info.yaml": text})
    assert reading.errors == []
    (entity,) = reading.entities
    assert entity.spec["lifecycle"] == "production"
    assert entity.spec["copy"] == {"type": "service", "lifecycle": "production"}


def test_file_that_is_not_utf8_is_an_error(make_source: MakeSource) -> None:
    reading = read(make_source, {"catalog-info.yaml": b"kind: \xff\xfe\n"})
    assert messages(reading) == [
        "catalog-info.yaml: The file is not UTF-8 text (byte 6 is invalid)."
    ]


def test_duplicate_ref_in_one_reading_keeps_the_first(make_source: MakeSource) -> None:
    files: Files = {
        "catalog-info.yaml": f"{component('a', system='one')}\n---\n{location('l', './b.yaml')}",
        "b.yaml": component("A", system="two"),
    }
    reading = read(make_source, files)
    assert refs(reading) == ["component:default/a", "location:default/l"]
    assert reading.entities[0].spec["system"] == "one"
    (error,) = reading.errors
    assert (error.path, error.entity_ref) == ("b.yaml", "component:default/a")
    assert "defined again in b.yaml" in error.message


# -- Location targets --------------------------------------------------------------------------


def test_location_targets_resolve_relative_to_the_locations_directory(
    make_source: MakeSource,
) -> None:
    files: Files = {
        "catalog-info.yaml": location("root", "./teams/all.yaml"),
        "teams/all.yaml": location("teams", "./a/catalog.yaml", "../shared/b.yaml", "c.yaml"),
        "teams/a/catalog.yaml": component("a"),
        "shared/b.yaml": component("b"),
        "teams/c.yaml": component("c"),
    }
    reading = read(make_source, files)
    assert reading.errors == []
    assert reading.files_read == [
        "catalog-info.yaml",
        "teams/all.yaml",
        "teams/a/catalog.yaml",
        "shared/b.yaml",
        "teams/c.yaml",
    ]
    assert refs(reading)[-3:] == [
        "component:default/a",
        "component:default/b",
        "component:default/c",
    ]


def test_location_with_target_and_targets_reads_both(make_source: MakeSource) -> None:
    files: Files = {
        "catalog-info.yaml": location("root", "./b.yaml", target="./a.yaml", type="url"),
        "a.yaml": component("a"),
        "b.yaml": component("b"),
    }
    assert refs(read(make_source, files))[1:] == ["component:default/a", "component:default/b"]


def test_missing_target_is_an_error_against_the_location(make_source: MakeSource) -> None:
    files: Files = {
        "catalog-info.yaml": location("root", "./gone.yaml", "./here.yaml"),
        "here.yaml": component("here"),
    }
    reading = read(make_source, files)
    assert refs(reading) == ["location:default/root", "component:default/here"]
    (error,) = reading.errors
    assert error.message == (
        "Location target ./gone.yaml refers to gone.yaml, which does not exist in the repository."
    )
    assert (error.path, error.entity_ref) == ("catalog-info.yaml", "location:default/root")


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("../outside.yaml", "points outside the repository"),
        ("./a/../../outside.yaml", "points outside the repository"),
        ("/etc/catalog.yaml", "is an absolute path"),
    ],
)
def test_targets_outside_the_repository_are_refused(
    make_source: MakeSource, target: str, reason: str
) -> None:
    reading = read(make_source, {"catalog-info.yaml": location("root", target)})
    (error,) = reading.errors
    assert error.message.startswith(f"Location target {target} {reason}")
    assert error.entity_ref == "location:default/root"


def test_absolute_url_targets_are_returned_not_followed(make_source: MakeSource) -> None:
    url = "https://github.com/other/repo/blob/main/catalog-info.yaml"
    reading = read(make_source, {"catalog-info.yaml": location("root", url, type="url")})
    assert reading.errors == []
    assert reading.files_read == ["catalog-info.yaml"]
    (external,) = reading.external_targets
    assert (external.target, external.type, external.entity_ref) == (
        url,
        "url",
        "location:default/root",
    )
    assert external.location == location_url("catalog-info.yaml")


def test_location_cycle_is_an_error_and_each_file_is_read_once(make_source: MakeSource) -> None:
    files: Files = {
        "catalog-info.yaml": location("root", "./b.yaml"),
        "b.yaml": location("b", "./catalog-info.yaml"),
    }
    reading = read(make_source, files)
    assert refs(reading) == ["location:default/root", "location:default/b"]
    (error,) = reading.errors
    assert error.path == "b.yaml"
    assert error.message == (
        "Location target ./catalog-info.yaml leads back to catalog-info.yaml, which is already "
        "being read (catalog-info.yaml -> b.yaml -> catalog-info.yaml); the cycle was not followed."
    )


def test_location_pointing_at_its_own_file_is_a_cycle(make_source: MakeSource) -> None:
    reading = read(make_source, {"catalog-info.yaml": location("root", "./catalog-info.yaml")})
    assert "the cycle was not followed" in messages(reading)[0]


def test_file_reached_through_two_locations_is_read_once_without_error(
    make_source: MakeSource,
) -> None:
    files: Files = {
        "catalog-info.yaml": location("root", "./a.yaml", "./b.yaml"),
        "a.yaml": location("a", "./shared.yaml"),
        "b.yaml": location("b", "./shared.yaml"),
        "shared.yaml": component("shared"),
    }
    reading = read(make_source, files)
    assert reading.errors == []
    assert refs(reading).count("component:default/shared") == 1


def test_location_nesting_beyond_the_limit_is_an_error(make_source: MakeSource) -> None:
    files: Files = {f"l{i}.yaml": location(f"l{i}", f"./l{i + 1}.yaml") for i in range(6)}
    files["l6.yaml"] = component("deep")
    reading = read(make_source, files, root="l0.yaml", max_location_depth=3)
    assert refs(reading) == [f"location:default/l{i}" for i in range(4)]
    (error,) = reading.errors
    assert error.message == (
        "Location target ./l4.yaml (l4.yaml) is more than 3 Location levels below l0.yaml; "
        "it was not read."
    )
    assert read(make_source, files, root="l0.yaml", max_location_depth=6).errors == []


def test_glob_targets_are_expanded_when_the_source_can_list(make_source: MakeSource) -> None:
    files: Files = {
        "catalog-info.yaml": location("root", "./components/*.yaml"),
        "components/b.yaml": component("b"),
        "components/a.yaml": component("a"),
        "components/notes.txt": "not yaml",
        "components/nested/c.yaml": component("c"),
    }
    reading = read(make_source, files, listable=True)
    assert reading.errors == []
    assert refs(reading) == ["location:default/root", "component:default/a", "component:default/b"]


def test_glob_targets_without_listing_or_with_wildcard_directories_are_errors(
    make_source: MakeSource,
) -> None:
    files: Files = {"catalog-info.yaml": location("root", "./components/*.yaml", "./**/x.yaml")}
    assert messages(read(make_source, files))[0] == (
        "Location target ./components/*.yaml is a glob pattern, which this reader cannot "
        "expand; list the files one by one."
    )
    errors = messages(read(make_source, files, listable=True))
    assert errors == [
        "Location target ./components/*.yaml matches no files.",
        "Location target ./**/x.yaml has wildcards outside its file name; only the last part "
        "of a target may hold them (e.g. ./components/*.yaml).",
    ]


# -- placeholders ------------------------------------------------------------------------------


def api(name: str, definition: Any, **metadata: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "API",
            "metadata": {"name": name, **metadata},
            "spec": {
                "type": "openapi",
                "lifecycle": "production",
                "owner": "team-a",
                "definition": definition,
            },
        }
    )


def test_text_placeholder_resolves_relative_to_the_descriptor(make_source: MakeSource) -> None:
    files: Files = {
        "services/pets/catalog-info.yaml": api("pets", {"$text": "../../specs/pets.yaml"}),
        "specs/pets.yaml": "openapi: 3.1.0\n",
    }
    reading = read(make_source, files, root="services/pets/catalog-info.yaml")
    assert reading.errors == []
    assert reading.entities[0].spec["definition"] == "openapi: 3.1.0\n"
    assert reading.files_read == ["services/pets/catalog-info.yaml", "specs/pets.yaml"]


def test_json_and_yaml_placeholders_are_parsed_anywhere_in_the_entity(
    make_source: MakeSource,
) -> None:
    entity = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "a", "labels": {"$json": "./labels.json"}},
        "spec": {
            "type": "service",
            "lifecycle": "production",
            "owner": "team-a",
            "extra": [{"$yaml": "./extra.yaml"}],
        },
    }
    files: Files = {
        "catalog-info.yaml": json.dumps(entity),
        "labels.json": '{"tier": "gold"}',
        "extra.yaml": "when: 2024-01-01\nlist: [1, 2]\n",
    }
    reading = read(make_source, files)
    assert reading.errors == []
    (resolved,) = reading.entities
    assert resolved.metadata["labels"] == {"tier": "gold"}
    assert resolved.spec["extra"] == [{"when": "2024-01-01", "list": [1, 2]}]


def test_dollar_keys_that_are_not_placeholders_are_left_alone(make_source: MakeSource) -> None:
    schema = {"$ref": "#/definitions/node", "definitions": {"node": {"type": "object"}}}
    files: Files = {
        "catalog-info.yaml": component(
            "a", schema=schema, mixed={"$text": "./x", "other": 1}, notstring={"$text": 7}
        )
    }
    reading = read(make_source, files)
    assert reading.errors == []
    assert reading.entities[0].spec["schema"] == schema
    assert reading.entities[0].spec["mixed"] == {"$text": "./x", "other": 1}


@pytest.mark.parametrize(
    ("placeholder", "files", "message"),
    [
        (
            {"$text": "https://example.com/openapi.yaml"},
            {},
            "Placeholder $text in spec.definition refers to https://example.com/openapi.yaml, "
            "which is an absolute URL, outside the repository; Cairn reads placeholder files "
            "only from the same repository, so use a path relative to this file.",
        ),
        (
            {"$text": "../../etc/passwd"},
            {},
            "Placeholder $text in spec.definition refers to ../../etc/passwd, which points "
            "outside the repository; Cairn reads placeholder files only from the same "
            "repository, so use a path relative to this file.",
        ),
        (
            {"$text": "./missing.yaml"},
            {},
            "Placeholder $text in spec.definition refers to ./missing.yaml (missing.yaml), "
            "which does not exist in the repository.",
        ),
        (
            {"$json": "./bad.json"},
            {"bad.json": "{nope"},
            "Placeholder $json in spec.definition could not parse bad.json as JSON: "
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1).",
        ),
        (
            {"$yaml": "./two.yaml"},
            {"two.yaml": "a: 1\n---\nb: 2\n"},
            "Placeholder $yaml in spec.definition expects exactly one YAML document in "
            "two.yaml, but found 2.",
        ),
        (
            {"$yaml": "./broken.yaml"},
            {"broken.yaml": "a: [1\n"},
            # the parser's own wording follows (it differs between libyaml and pure Python)
            "Placeholder $yaml in spec.definition could not read broken.yaml as YAML: "
            "YAML error at line 2, column 1: ",
        ),
    ],
)
def test_placeholder_failures_drop_the_entity_with_a_clear_error(
    make_source: MakeSource, placeholder: dict[str, str], files: Files, message: str
) -> None:
    reading = read(make_source, {"catalog-info.yaml": api("pets", placeholder), **files})
    assert reading.entities == []
    (error,) = reading.errors
    assert error.message.startswith(message)
    assert error.message.endswith(".")
    assert (error.entity_ref, error.path) == ("api:default/pets", "catalog-info.yaml")


def test_deeply_nested_json_placeholder_is_refused_without_recursion_errors(
    make_source: MakeSource,
) -> None:
    files: Files = {
        "catalog-info.yaml": api("pets", {"$json": "./deep.json"}),
        "deep.json": "[" * 100_000 + "]" * 100_000,
    }
    assert messages(read(make_source, files)) == [
        "Placeholder $json in spec.definition refers to deep.json, whose JSON nests deeper "
        "than 64 levels."
    ]
    shallow: Files = {**files, "deep.json": '["[[[[", {"a": "]]]"}]'}
    reading = read(make_source, shallow)
    assert reading.errors[0].message.startswith("spec.definition must be a non-empty string")


def test_placeholder_file_over_the_limit_is_refused(make_source: MakeSource) -> None:
    files: Files = {"catalog-info.yaml": api("pets", {"$text": "./big.txt"}), "big.txt": "x" * 101}
    reading = read(make_source, files, max_placeholder_bytes=100)
    assert messages(reading) == [
        "Placeholder $text in spec.definition refers to big.txt, which is 101 bytes, "
        "over the limit of 100 bytes for placeholder files."
    ]


def test_a_placeholder_file_is_read_once_however_often_it_is_used(
    make_source: MakeSource,
) -> None:
    files: Files = {
        "catalog-info.yaml": "\n---\n".join(
            api(f"a{i}", {"$text": "./spec.yaml"}) for i in range(5)
        ),
        "spec.yaml": "openapi: 3.1.0\n",
    }
    source = make_source(files)
    reading = read_catalog("catalog-info.yaml", source, location_url)
    assert len(reading.entities) == 5
    assert source.reads.count("spec.yaml") == 1  # type: ignore[attr-defined]


# -- limits ------------------------------------------------------------------------------------


def test_file_over_the_size_limit_is_not_parsed_and_the_rest_is_read(
    make_source: MakeSource,
) -> None:
    files: Files = {
        "catalog-info.yaml": location("root", "./big.yaml", "./small.yaml"),
        "big.yaml": component("big", padding="x" * 2000),
        "small.yaml": component("small"),
    }
    reading = read(make_source, files, max_file_bytes=1000)
    assert refs(reading) == ["location:default/root", "component:default/small"]
    (error,) = reading.errors
    assert error.path == "big.yaml"
    assert error.message.startswith("big.yaml: The file is 2")
    assert error.message.endswith("bytes, over the limit of 1000 bytes.")


def test_yaml_nested_deeper_than_the_limit_is_refused(make_source: MakeSource) -> None:
    deep = "[" * 65 + "]" * 65
    files: Files = {"catalog-info.yaml": f"{component('ok')}\n---\n{deep}\n"}
    reading = read(make_source, files)
    assert refs(reading) == ["component:default/ok"]
    assert messages(reading) == [
        "catalog-info.yaml: Document 2 nests deeper than 64 levels (line 3)."
    ]


def test_absurdly_deep_yaml_fails_fast_without_recursion_errors(make_source: MakeSource) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    reading = read(make_source, {"catalog-info.yaml": deep}, max_file_bytes=1_000_000)
    assert "nests deeper than 64 levels" in messages(reading)[0]


def test_alias_bomb_is_refused_quickly(make_source: MakeSource) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    bomb = "\n".join(lines) + "\n"
    started = time.monotonic()
    reading = read(make_source, {"catalog-info.yaml": bomb})
    assert time.monotonic() - started < 2
    (message,) = messages(reading)
    assert "Expanding the YAML aliases" in message and "larger than 1000000 bytes" in message


def test_recursive_alias_is_refused(make_source: MakeSource) -> None:
    reading = read(make_source, {"catalog-info.yaml": "a: &a [*a]\n"})
    assert "nests deeper than 64 levels through its aliases" in messages(reading)[0]


def test_document_limit_stops_the_reading_with_an_error(make_source: MakeSource) -> None:
    files: Files = {
        "catalog-info.yaml": "\n---\n".join(component(f"c{i}") for i in range(3))
        + "\n---\n"
        + location("l", "./more.yaml"),
        "more.yaml": component("more"),
    }
    reading = read(make_source, files, max_documents=2)
    assert refs(reading) == ["component:default/c0", "component:default/c1"]
    assert messages(reading) == [
        "catalog-info.yaml: this catalog reading reached its limit of 2 YAML documents at "
        "line 4; the rest was not read."
    ]


def test_file_count_limit_stops_following_targets(make_source: MakeSource) -> None:
    files: Files = {"catalog-info.yaml": location("root", *[f"./c{i}.yaml" for i in range(5)])}
    files.update({f"c{i}.yaml": component(f"c{i}") for i in range(5)})
    reading = read(make_source, files, max_files=3)
    assert len(reading.files_read) == 3
    assert len(reading.errors) == 3
    assert reading.errors[0].message == (
        "c2.yaml was not read: this catalog reading already opened 3 files, the limit."
    )
