"""The demo organisation is real git: bare remotes whose head commits hold the catalog."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from ingest import cdevents
from ingest.ci_github import normalise_ci
from ingest.github import normalise
from services.demo import DemoRepository, create_demo_repositories
from services.demo.ci_events import ci_deliveries, expected_deployments
from services.demo.github_payloads import ZERO_SHA
from services.model.ci_events import CiEventReceived, DeploymentReported, PipelineRunReported
from services.model.events import GitEventReceived, PushReceived


def git(*args: str | Path) -> str:
    done = subprocess.run(["git", *map(str, args)], capture_output=True, text=True, check=True)
    return done.stdout


def tree(repo: DemoRepository) -> list[str]:
    """Every file of the remote's head commit, by `git ls-tree`."""
    return git("-C", repo.remote_dir, "ls-tree", "-r", "--name-only", repo.head).splitlines()


def show(repo: DemoRepository, path: str) -> str:
    return git("-C", repo.remote_dir, "show", f"{repo.head}:{path}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DemoRepository]:
    repositories = create_demo_repositories(tmp_path_factory.mktemp("demo"))
    return {repo.name: repo for repo in repositories}


def descriptors(repo: DemoRepository) -> dict[str, list[dict[str, Any]]]:
    """Every catalog file of the head commit, Location targets followed, parsed."""
    found: dict[str, list[dict[str, Any]]] = {}
    pending = list(repo.catalog_files)
    while pending:
        path = pending.pop()
        documents = [d for d in yaml.safe_load_all(show(repo, path)) if d]
        found[path] = documents
        for document in documents:
            if document["kind"] == "Location":
                base = PurePosixPath(path).parent
                for target in document["spec"]["targets"]:
                    pending.append(str(base / PurePosixPath(target)).removeprefix("./"))
    return found


def test_about_a_dozen_repositories_of_the_acme_organisation(
    demo: dict[str, DemoRepository],
) -> None:
    assert 10 <= len(demo) <= 14
    assert {repo.owner for repo in demo.values()} == {"acme"}
    assert {"payments-api", "payment-gateway", "orderService", "checkout-web"} <= set(demo)


def test_each_working_copy_pushes_to_its_bare_remote(demo: dict[str, DemoRepository]) -> None:
    for repo in demo.values():
        assert repo.work_dir.parts[-3:] == ("work", "acme", repo.name)
        assert repo.remote_dir.parts[-3:] == ("remotes", "acme", f"{repo.name}.git")
        assert git("-C", repo.remote_dir, "rev-parse", "--is-bare-repository").strip() == "true"
        origin = git("-C", repo.work_dir, "remote", "get-url", "origin").strip()
        assert Path(origin) == repo.remote_dir.resolve()
        assert repo.default_branch == "main"
        assert git("-C", repo.remote_dir, "rev-parse", "refs/heads/main").strip() == repo.head
        assert git("-C", repo.work_dir, "rev-parse", "HEAD").strip() == repo.head
        assert git("-C", repo.remote_dir, "symbolic-ref", "HEAD").strip() == "refs/heads/main"


def test_clone_url_and_html_url_are_the_remote_file_url(demo: dict[str, DemoRepository]) -> None:
    repo = demo["payments-api"]
    assert repo.clone_url == repo.remote_dir.resolve().as_uri()
    assert repo.html_url == repo.clone_url
    assert git("ls-remote", repo.clone_url, "refs/heads/main").split()[0] == repo.head


def test_head_commit_contains_the_catalog_files(demo: dict[str, DemoRepository]) -> None:
    for repo in demo.values():
        files = tree(repo)
        expected = [f for f in files if PurePosixPath(f).name.startswith("catalog-info.")]
        assert sorted(expected) == list(repo.catalog_files)
    assert "catalog-info.yaml" in tree(demo["payments-api"])
    assert "catalog-info.yml" in tree(demo["shipping-service"])
    assert demo["handbook"].catalog_files == ()


def test_commits_have_the_fixed_demo_author(demo: dict[str, DemoRepository]) -> None:
    authors = git("-C", demo["money"].remote_dir, "log", "--format=%an <%ae>|%cn <%ce>", "main")
    assert set(authors.splitlines()) == {"Acme Demo <demo@acme.test>|Acme Demo <demo@acme.test>"}


def test_org_repository_root_is_a_location_with_relative_targets(
    demo: dict[str, DemoRepository],
) -> None:
    org = demo["org"]
    [location] = yaml.safe_load_all(show(org, "catalog-info.yaml"))
    assert location["kind"] == "Location"
    targets = location["spec"]["targets"]
    assert all(target.startswith("./") for target in targets)
    files = tree(org)
    assert all(target.removeprefix("./") in files for target in targets)
    kinds = {d["kind"] for docs in descriptors(org).values() for d in docs}
    assert kinds == {"Location", "Group", "User", "Domain", "System"}


def test_apis_carry_real_openapi_definitions_through_text_placeholders(
    demo: dict[str, DemoRepository],
) -> None:
    apis = 0
    for repo in demo.values():
        if repo.name == "legacy-billing":  # broken on purpose; holds no API
            continue
        for path, documents in descriptors(repo).items():
            for document in documents:
                if document.get("kind") != "API":
                    continue
                apis += 1
                target = document["spec"]["definition"]["$text"]
                assert target.startswith("./")
                definition_path = str(PurePosixPath(path).parent / target).removeprefix("./")
                definition = yaml.safe_load(show(repo, definition_path))
                assert definition["openapi"].startswith("3.")
                assert definition["paths"]
    assert apis >= 4


def test_monorepo_has_catalog_files_only_in_sub_folders(demo: dict[str, DemoRepository]) -> None:
    files = demo["platform"].catalog_files
    assert len(files) >= 3
    assert all("/" in path for path in files)


def test_legacy_billing_holds_broken_descriptors_beside_a_valid_one(
    demo: dict[str, DemoRepository],
) -> None:
    repo = demo["legacy-billing"]
    with pytest.raises(yaml.YAMLError):
        list(yaml.safe_load_all(show(repo, "batch/catalog-info.yaml")))
    documents = list(yaml.safe_load_all(show(repo, "catalog-info.yaml")))
    owners = {d["metadata"]["name"]: d["spec"].get("owner") for d in documents}
    assert owners == {"legacy-billing": "payments-team", "billing-batch": None}


def test_every_reference_resolves_except_the_deliberately_broken_ones(
    demo: dict[str, DemoRepository],
) -> None:
    entities: dict[str, dict[str, Any]] = {}
    for repo in demo.values():
        if repo.name == "legacy-billing":
            continue
        for documents in descriptors(repo).values():
            for document in documents:
                assert document["apiVersion"] == "backstage.io/v1alpha1"
                ref = f"{document['kind'].lower()}:{document['metadata']['name']}"
                assert ref not in entities, f"{ref} is declared twice"
                entities[ref] = document

    def exists(ref: str, default_kind: str) -> bool:
        kind, _, name = ref.rpartition(":")
        return f"{kind or default_kind}:{name}" in entities

    missing = []
    for ref, entity in entities.items():
        spec = entity.get("spec", {})
        checks = [
            ("owner", "group"),
            ("system", "system"),
            ("domain", "domain"),
            ("parent", "group"),
            ("providesApis", "api"),
            ("consumesApis", "api"),
            ("dependsOn", "component"),
            ("children", "group"),
            ("memberOf", "group"),
            ("members", "user"),
        ]
        for field, kind in checks:
            value = spec.get(field)
            for target in [value] if isinstance(value, str) else value or []:
                if not exists(target, kind):
                    missing.append(f"{ref} {field} -> {target}")
        if entity["kind"] in ("Component", "API", "Resource", "System", "Domain"):
            assert spec.get("owner"), f"{ref} has no owner"
    assert missing == []
    kinds = {ref.split(":")[0] for ref in entities}
    assert kinds == {
        "location",
        "group",
        "user",
        "domain",
        "system",
        "component",
        "api",
        "resource",
    }


def test_demo_commit_ids_are_the_same_on_every_run_even_from_a_relative_root(
    demo: dict[str, DemoRepository], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    again = create_demo_repositories(Path("elsewhere"))
    assert {repo.name: repo.head for repo in again} == {n: r.head for n, r in demo.items()}
    assert all(repo.work_dir.is_absolute() for repo in again)


def test_user_git_configuration_does_not_leak_into_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo: dict[str, DemoRepository]
) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Someone Else\n[commit]\n\tgpgsign = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Someone Else")
    again = create_demo_repositories(tmp_path / "demo")
    assert again[0].head == demo[again[0].name].head


def test_reopening_an_existing_demo_keeps_its_repositories(tmp_path: Path) -> None:
    first = create_demo_repositories(tmp_path)
    changed = first[1].commit("Tweak the README", {"README.md": "# Changed\n"})
    reopened = create_demo_repositories(tmp_path)
    assert reopened[1].head == changed
    assert [r.head for r in reopened[2:]] == [r.head for r in first[2:]]


def test_half_made_repository_is_made_again(tmp_path: Path) -> None:
    first = create_demo_repositories(tmp_path)
    shutil.rmtree(first[0].remote_dir)
    (first[0].work_dir / "stray.txt").write_text("left over\n")
    again = create_demo_repositories(tmp_path)
    assert again[0].head == first[0].head
    assert not (again[0].work_dir / "stray.txt").exists()


def test_first_push_payload_describes_the_branch_creation(demo: dict[str, DemoRepository]) -> None:
    repo = demo["payments-api"]
    payload = repo.push_payload()
    assert payload["ref"] == "refs/heads/main"
    assert payload["before"] == ZERO_SHA
    assert payload["after"] == repo.head
    assert payload["created"] is True
    assert [c["message"] for c in payload["commits"]] == [
        "Initial commit",
        "Describe payments-api in the software catalog",
    ]
    assert payload["head_commit"]["id"] == repo.head
    assert "catalog-info.yaml" in payload["commits"][-1]["added"]
    assert payload["repository"]["clone_url"] == repo.clone_url


def test_live_commit_is_pushed_and_its_push_payload_normalises(tmp_path: Path) -> None:
    repo = next(r for r in create_demo_repositories(tmp_path) if r.name == "platform")
    before = repo.head
    catalog = "services/search-indexer/catalog-info.yaml"
    after = repo.commit("Retire the search indexer", {catalog: None, "NOTES.md": "Retired.\n"})

    assert after != before
    assert git("-C", repo.remote_dir, "rev-parse", "main").strip() == after
    assert catalog not in tree(repo)
    assert catalog not in repo.catalog_files
    payload = repo.push_payload()
    assert (payload["before"], payload["after"], payload["created"]) == (before, after, False)
    [commit] = payload["commits"]
    assert (commit["added"], commit["removed"], commit["modified"]) == (["NOTES.md"], [catalog], [])

    event = normalise("push", "delivery-1", payload)
    assert isinstance(event, GitEventReceived)
    assert isinstance(event.change, PushReceived)
    assert event.change.before == before
    assert event.change.after == after
    assert event.repository.key == "localhost/acme/platform"
    assert event.repository.clone_url == repo.clone_url


def test_demo_file_paths_may_not_leave_the_repository(demo: dict[str, DemoRepository]) -> None:
    with pytest.raises(ValueError, match="must be relative"):
        demo["money"].commit("Escape", {"../outside.txt": "nope"})


def test_the_demo_release_deploys_demo_heads_and_names_an_annotated_service(
    demo: dict[str, DemoRepository],
) -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    deliveries = ci_deliveries(list(demo.values()), now)
    events = [
        normalise_ci(d.event, f"demo-{i}", d.payload)
        if d.event is not None
        else cdevents.normalise(d.payload, f"demo-{i}")
        for i, d in enumerate(deliveries)
    ]
    assert all(isinstance(event, CiEventReceived) for event in events)
    received = [e for e in events if isinstance(e, CiEventReceived)]
    outcomes: dict[tuple[str, str], str] = {}
    for event in received:
        change = event.change
        if isinstance(change, DeploymentReported):
            who = event.subject.repository or event.subject.deployment_name or ""
            outcomes[(who, change.environment)] = change.status  # states arrive in order
    assert outcomes == {
        ("localhost/acme/payments-api", "staging"): "success",
        ("localhost/acme/payments-api", "production"): "success",
        ("localhost/acme/checkout-web", "staging"): "success",
        ("localhost/acme/checkout-web", "production"): "failure",
        ("service/notification-service", "production"): "success",
    }
    assert expected_deployments(deliveries) == len(outcomes)
    versions = {
        e.change.version
        for e in received
        if isinstance(e.change, DeploymentReported) and e.source == "github"
    }
    assert versions == {demo["payments-api"].head, demo["checkout-web"].head}
    [run] = {e.change.run_id for e in received if isinstance(e.change, PipelineRunReported)}
    assert run

    annotated = [
        document["metadata"]["name"]
        for documents in descriptors(demo["platform"]).values()
        for document in documents
        if document["metadata"].get("annotations", {}).get("cairn.dev/deployment-name")
        == "notification-service"
    ]
    assert annotated == ["notification-service"]
