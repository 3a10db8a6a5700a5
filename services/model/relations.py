"""Relations between entities, derived from their spec like BuiltinKindsEntityProcessor does.

Every reference field yields two edges: the outgoing relation from the entity and the
incoming one from the target back to it (`ownedBy` and `ownerOf`, ...). A ref without a kind
takes the field's default kind (`owner` is a Group, `system` a System, ...); `dependsOn` and
`dependencyOf` have none, so their refs must name the kind. A ref without a namespace takes
the entity's own namespace. Refs are written in `str(EntityRef)` form (lower-cased).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.model.entity import Entity, Relation
from services.model.refs import DEFAULT_NAMESPACE, EntityRef, InvalidRef, parse_ref

OWNED_BY = "ownedBy"
OWNER_OF = "ownerOf"
PART_OF = "partOf"
HAS_PART = "hasPart"
DEPENDS_ON = "dependsOn"
DEPENDENCY_OF = "dependencyOf"
PROVIDES_API = "providesApi"
API_PROVIDED_BY = "apiProvidedBy"
CONSUMES_API = "consumesApi"
API_CONSUMED_BY = "apiConsumedBy"
MEMBER_OF = "memberOf"
HAS_MEMBER = "hasMember"
CHILD_OF = "childOf"
PARENT_OF = "parentOf"


@dataclass(frozen=True)
class ReferenceField:
    """A spec field holding one ref or a list of refs, and the relations it produces."""

    field: str
    default_kind: str | None
    outgoing: str
    incoming: str


def _owner() -> ReferenceField:
    return ReferenceField("owner", "Group", OWNED_BY, OWNER_OF)


def _system() -> ReferenceField:
    return ReferenceField("system", "System", PART_OF, HAS_PART)


# Per kind, in the order Backstage emits them.
REFERENCE_FIELDS: dict[str, tuple[ReferenceField, ...]] = {
    "Component": (
        _owner(),
        ReferenceField("subcomponentOf", "Component", PART_OF, HAS_PART),
        ReferenceField("providesApis", "API", PROVIDES_API, API_PROVIDED_BY),
        ReferenceField("consumesApis", "API", CONSUMES_API, API_CONSUMED_BY),
        ReferenceField("dependsOn", None, DEPENDS_ON, DEPENDENCY_OF),
        ReferenceField("dependencyOf", None, DEPENDENCY_OF, DEPENDS_ON),
        _system(),
    ),
    "API": (_owner(), _system()),
    "Resource": (
        _owner(),
        ReferenceField("dependsOn", None, DEPENDS_ON, DEPENDENCY_OF),
        ReferenceField("dependencyOf", None, DEPENDENCY_OF, DEPENDS_ON),
        _system(),
    ),
    "User": (ReferenceField("memberOf", "Group", MEMBER_OF, HAS_MEMBER),),
    "Group": (
        ReferenceField("parent", "Group", CHILD_OF, PARENT_OF),
        ReferenceField("children", "Group", PARENT_OF, CHILD_OF),
        ReferenceField("members", "User", HAS_MEMBER, MEMBER_OF),
    ),
    "System": (_owner(), ReferenceField("domain", "Domain", PART_OF, HAS_PART)),
    "Domain": (_owner(), ReferenceField("subdomainOf", "Domain", PART_OF, HAS_PART)),
}


@dataclass(frozen=True)
class RelationEdge:
    source_ref: str
    type: str
    target_ref: str


def reference_values(value: object) -> list[object]:
    """The refs in a field's value: Backstage accepts one ref or a list of them."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


def derive_relations(entity: Entity) -> list[RelationEdge]:
    """Both directions of every relation the entity's spec declares, without duplicates.

    A value that is not a valid ref is skipped here; validation reports it.
    """
    self_ref = entity.ref
    source = str(self_ref)
    namespace = self_ref.namespace or DEFAULT_NAMESPACE
    edges: list[RelationEdge] = []
    seen: set[RelationEdge] = set()

    def add(edge: RelationEdge) -> None:
        if edge not in seen:
            seen.add(edge)
            edges.append(edge)

    for spec_field in REFERENCE_FIELDS.get(entity.kind, ()):
        for value in reference_values(entity.spec.get(spec_field.field)):
            if not isinstance(value, str) or not value:
                continue
            try:
                target_ref: EntityRef = parse_ref(
                    value, default_kind=spec_field.default_kind, default_namespace=namespace
                )
            except InvalidRef:
                continue
            target = str(target_ref)
            add(RelationEdge(source_ref=source, type=spec_field.outgoing, target_ref=target))
            add(RelationEdge(source_ref=target, type=spec_field.incoming, target_ref=source))
    return edges


def outgoing_relations(ref: EntityRef | str, edges: Iterable[RelationEdge]) -> list[Relation]:
    """The relations whose source is `ref`, as an entity's `relations` list (no duplicates)."""
    key = ref.key if isinstance(ref, EntityRef) else ref.lower()
    relations: list[Relation] = []
    seen: set[tuple[str, str]] = set()
    for edge in edges:
        if edge.source_ref.lower() != key:
            continue
        pair = (edge.type, edge.target_ref.lower())
        if pair not in seen:
            seen.add(pair)
            relations.append(Relation(type=edge.type, target_ref=edge.target_ref))
    return relations
