"""Backstage's `filter` strings and predicate `query` bodies, parsed into store filters."""

from __future__ import annotations

import pytest

from search_api.backstage_errors import InputError
from search_api.backstage_params import parse_filter_strings, parse_predicate
from services.store.catalog_query import AllOf, AnyOf, FieldMatch, Not


def test_filter_sets_or_and_their_conditions_and_case_insensitively() -> None:
    parsed = parse_filter_strings(["kind=User, metadata.namespace=Default", "kind=group,spec.type"])
    assert parsed == AnyOf(
        (
            AllOf((FieldMatch("kind", ("user",)), FieldMatch("metadata.namespace", ("default",)))),
            AllOf((FieldMatch("kind", ("group",)), FieldMatch("spec.type"))),
        )
    )


def test_a_key_repeated_in_one_set_matches_any_of_its_values() -> None:
    parsed = parse_filter_strings(["kind=component,kind=API,spec.type"])
    assert parsed == AnyOf(
        (AllOf((FieldMatch("kind", ("component", "api")), FieldMatch("spec.type"))),)
    )


def test_an_empty_value_is_matched_and_empty_filters_filter_nothing() -> None:
    assert parse_filter_strings(["spec.type="]) == AnyOf(
        (AllOf((FieldMatch("spec.type", ("",)),)),)
    )
    assert parse_filter_strings(["", " , "]) is None
    assert parse_filter_strings(None) is None


def test_a_statement_without_a_key_is_refused_with_backstages_message() -> None:
    with pytest.raises(InputError, match="Invalid filter, '=x' is not a valid statement"):
        parse_filter_strings(["kind=a,=x"])


def test_predicates_translate_every_operator() -> None:
    parsed = parse_predicate(
        {
            "$all": [
                {"Kind": "Component", "spec.replicas": 3, "spec.public": True},
                {
                    "$any": [
                        {"spec.type": {"$in": ["Service", 7]}},
                        {"metadata.name": {"$hasPrefix": "Pay"}},
                    ]
                },
                {"$not": {"metadata.tags.java": {"$exists": True}}},
                {"spec.owner": {"$exists": False}},
            ]
        }
    )
    assert parsed == AllOf(
        (
            AllOf(
                (
                    FieldMatch("kind", ("component",)),
                    FieldMatch("spec.replicas", ("3",)),
                    FieldMatch("spec.public", ("true",)),
                )
            ),
            AnyOf(
                (
                    AllOf((FieldMatch("spec.type", ("service", "7")),)),
                    AllOf((FieldMatch("metadata.name", prefix="pay"),)),
                )
            ),
            Not(AllOf((FieldMatch("metadata.tags.java"),))),
            AllOf((Not(FieldMatch("spec.owner")),)),
        )
    )


def test_empty_all_matches_nothing_and_an_empty_expression_everything() -> None:
    assert parse_predicate({"$all": []}) == AnyOf(())
    assert parse_predicate({"$any": []}) == AnyOf(())
    assert parse_predicate({}) == AllOf(())


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("component", "Query must be an object"),
        ({"$all": [{"kind": "a"}], "kind": "b"}, "Invalid query"),
        ({"$nor": []}, "Invalid query"),
        ({"kind": {"$in": "a"}}, "Invalid query"),
        ({"kind": ["a"]}, "Invalid query"),
        (
            {"metadata.tags": {"$contains": "java"}},
            'Invalid filter predicate value for field "metadata.tags"',
        ),
        ({"$all": ["component"]}, "top-level primitive values are not supported"),
    ],
)
def test_predicates_backstage_refuses_are_refused(query: object, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("$", r"\$")):
        parse_predicate(query)
