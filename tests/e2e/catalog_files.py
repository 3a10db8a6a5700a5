"""Descriptor texts the end-to-end tests push."""

from __future__ import annotations


def component(
    name: str,
    *,
    owner: str = "team-a",
    description: str = "",
    system: str | None = None,
    extra: str = "",
) -> str:
    system_line = f"  system: {system}\n" if system else ""
    return (
        "apiVersion: backstage.io/v1alpha1\n"
        "kind: Component\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  description: {description or name + ' service'}\n"
        "spec:\n"
        "  type: service\n"
        "  lifecycle: production\n"
        f"  owner: {owner}\n"
        f"{system_line}{extra}"
    )


def documents(*texts: str) -> str:
    return "---\n".join(texts)
