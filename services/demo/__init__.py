"""The demo organisation "acme": real local git repositories and GitHub-shaped deliveries.

Used by `cairn up --demo` and by tests. Nothing here talks to a network or to Cairn itself:
it makes repositories and builds the deliveries a git host would send about them.
"""

from services.demo.github_payloads import (
    CommitInfo,
    GitHubRepoInfo,
    github_headers,
    new_delivery_id,
    ping_payload,
    push_payload,
    repository_payload,
    sign,
)
from services.demo.repos import DemoError, DemoRepository, create_demo_repositories

__all__ = [
    "CommitInfo",
    "DemoError",
    "DemoRepository",
    "GitHubRepoInfo",
    "create_demo_repositories",
    "github_headers",
    "new_delivery_id",
    "ping_payload",
    "push_payload",
    "repository_payload",
    "sign",
]
