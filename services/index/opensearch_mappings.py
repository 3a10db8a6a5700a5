"""The OpenSearch index template, settings and mappings, declared in code and applied at start.

Nothing is left to dynamic mapping (`dynamic: strict`: a field not declared here is an error).
Physical indexes are named `<alias>-v<MAPPING_VERSION>-<stamp>` and matched by the template;
bump MAPPING_VERSION when anything below changes, then run `cairn reindex`.

Analysis (needs OpenSearch's analysis-common module):
- `cairn_words`: splits on anything but letters and digits and inside camelCase words
  (`word_delimiter_graph`; a pattern char filter adds the two breaks it does not make:
  `HTTPServer` -> `http server`, `v2Api` -> `v2 api`), lower-cases and folds diacritics:
  the same words as `document.name_words`.
- `cairn_prefix`: `cairn_words` then edge n-grams (1..20 letters) of each word, for
  typeahead and word-prefix matches on names and titles; searched with `cairn_words`.

Deployments (needs OpenSearch's parent-join module): an entity's environments live in a child
document of the entity's (`relation`: `entity` -> `deployments`, id `<ref key>#deployments`,
routed to the entity), with one nested `environments` item per environment, so a filter holds
within one environment and entity documents and deployments are versioned apart.
"""

from __future__ import annotations

from typing import Any

MAPPING_VERSION = 2
MAX_PREFIX = 20

_ANALYSIS: dict[str, Any] = {
    "char_filter": {
        "cairn_camel_breaks": {
            "type": "pattern_replace",
            "pattern": r"(?<=\p{Lu})(?=\p{Lu}\p{Ll})|(?<=\p{N})(?=\p{Lu})",
            "replacement": "-",
        }
    },
    "filter": {
        "cairn_word_parts": {
            "type": "word_delimiter_graph",
            "generate_word_parts": True,
            "generate_number_parts": True,
            "split_on_case_change": True,
            "split_on_numerics": False,
            "stem_english_possessive": False,
            "preserve_original": False,
        },
        "cairn_edge": {"type": "edge_ngram", "min_gram": 1, "max_gram": MAX_PREFIX},
    },
    "analyzer": {
        "cairn_words": {
            "type": "custom",
            "char_filter": ["cairn_camel_breaks"],
            "tokenizer": "whitespace",
            "filter": ["cairn_word_parts", "lowercase", "asciifolding"],
        },
        "cairn_prefix": {
            "type": "custom",
            "char_filter": ["cairn_camel_breaks"],
            "tokenizer": "whitespace",
            "filter": ["cairn_word_parts", "lowercase", "asciifolding", "cairn_edge"],
        },
    },
}


def _keyword(**extra: Any) -> dict[str, Any]:
    return {"type": "keyword", **extra}


def _words(**extra: Any) -> dict[str, Any]:
    # Offsets in the postings let the highlighter mark words without re-analysing the text.
    return {"type": "text", "analyzer": "cairn_words", "index_options": "offsets", **extra}


def _with_prefix() -> dict[str, Any]:
    return _words(
        fields={
            "prefix": {
                "type": "text",
                "analyzer": "cairn_prefix",
                "search_analyzer": "cairn_words",
            }
        }
    )


# The long texts are stored apart from `_source`, so a hit (or a suggestion) never loads and
# parses an API definition; the highlighter reads the stored field.
LONG_TEXTS = ("spec", "definition")
# The two sides of the `relation` join field.
ENTITY = "entity"
DEPLOYMENTS = "deployments"

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "_source": {"excludes": list(LONG_TEXTS)},
    "_meta": {"mapping_version": MAPPING_VERSION, "owner": "cairn"},
    "properties": {
        # identity and sort keys
        "ref": _keyword(index=False, doc_values=False),
        "ref_key": _keyword(),
        "name_lower": _keyword(),
        "name_key": _keyword(),
        "name_length": {"type": "integer"},
        "updated_at": {"type": "double"},
        "deleted": {"type": "boolean"},
        # facets
        "kind": _keyword(eager_global_ordinals=True),
        "namespace": _keyword(eager_global_ordinals=True),
        "type": _keyword(eager_global_ordinals=True),
        "lifecycle": _keyword(eager_global_ordinals=True),
        "owner": _keyword(eager_global_ordinals=True),
        "system": _keyword(eager_global_ordinals=True),
        "domain": _keyword(eager_global_ordinals=True),
        "tags": _keyword(eager_global_ordinals=True, fields={"words": _words()}),
        "labels": _keyword(eager_global_ordinals=True),
        # text
        "name": _with_prefix(),
        "title": _with_prefix(),
        "description": _words(),
        "related": _words(),
        "spec": _words(store=True),
        "definition": _words(store=True),
        # deployments (the child documents)
        "relation": {"type": "join", "relations": {ENTITY: DEPLOYMENTS}},
        "environments": {
            "type": "nested",
            "properties": {
                "environment": _keyword(),
                "version": _keyword(),
                "deployed_at": {"type": "double"},
                "last_status": _keyword(),
                "last_version": _keyword(index=False),
                "last_at": {"type": "double"},
            },
        },
    },
}


def index_settings(refresh_interval: str) -> dict[str, Any]:
    return {
        "number_of_shards": 1,
        "number_of_replicas": 0,
        "auto_expand_replicas": "0-1",
        "refresh_interval": refresh_interval,
        "max_result_window": 10_000,
        "analysis": _ANALYSIS,
    }


def index_template(alias: str, refresh_interval: str) -> dict[str, Any]:
    """The composable template every physical index behind `alias` is created from."""
    return {
        "index_patterns": [f"{alias}-v*"],
        "priority": 100,
        "template": {"settings": index_settings(refresh_interval), "mappings": MAPPINGS},
        "_meta": {"mapping_version": MAPPING_VERSION, "owner": "cairn"},
    }
