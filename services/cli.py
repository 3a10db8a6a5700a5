"""The `cairn` command: the composition root that wires adapters into roles.

`cairn up` runs every role in one process; `cairn ingest`, `cairn processors` and
`cairn api` run one role each, so they can be scaled apart. Each adapter is chosen by
configuration on its own (see services/settings.py).
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from services.bus.port import LogUnavailable
from services.collector import settle_collector
from services.settings import Settings
from services.store.port import StoreUnavailable

ROLES = ("ingest", "processors", "api")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "insecure_webhooks", False):
        overrides["insecure_webhooks"] = True
    return Settings.load(args.config, **overrides)


def _demo_secret(settings: Settings) -> bytes:
    """The demo signs its webhooks; with no secret configured it makes one for this run."""
    configured = settings.webhooks.github_secrets()
    if configured:
        return configured[0]
    secret = secrets.token_hex(16)
    settings.webhooks.github_webhook_secret = SecretStr(secret)
    return secret.encode()


def _demo_cdevents_token(settings: Settings) -> str:
    """The demo reports CDEvents too; with no token configured it makes one for this run."""
    configured = settings.webhooks.cdevents_tokens()
    if configured:
        return configured[0].decode()
    token = secrets.token_hex(16)
    settings.webhooks.cdevents_token = SecretStr(token)
    return token


def serve(settings: Settings, roles: set[str], *, demo: bool, log_level: str) -> int:
    import uvicorn

    from ingest.receiver import add_ingest_routes, create_ingest_router
    from processors.embedded import EmbeddedRunner
    from search_api.app import create_search_router, install_error_handlers
    from search_api.queries import CatalogQueries
    from services.wiring import build_adapters, build_descriptor_processor, create_http_app

    demo_secret = _demo_secret(settings) if demo else None
    demo_token = _demo_cdevents_token(settings) if demo else ""
    if settings.adapters.kafka_bootstrap and roles & {"ingest", "processors"}:
        _check_kafka_topics(settings)
    adapters = build_adapters(settings)
    include: list[Callable[[FastAPI], None]] = []
    runner: EmbeddedRunner | None = None
    queries = CatalogQueries(adapters.store, adapters.index)
    from services.wiring import add_ci_cd

    ci_cd = add_ci_cd(settings, roles, adapters.log, queries, include)
    if "ingest" in roles:
        router = create_ingest_router(settings.webhooks, adapters.log)
        include.append(lambda app: add_ingest_routes(app, router))
    if "api" in roles:
        from search_api.catalog_api import install_catalog_api
        from services.wiring import build_catalog_api

        catalog_api = build_catalog_api(settings, adapters, queries)
        include.append(lambda app: app.include_router(create_search_router(queries)))
        include.append(install_error_handlers)
        include.append(lambda app: install_catalog_api(app, catalog_api))
    if "processors" in roles:
        runner = EmbeddedRunner(
            adapters.log,
            adapters.store,
            adapters.index,
            build_descriptor_processor(settings, adapters),
            resync_interval=settings.git.resync_interval_seconds,
            descriptor_workers=settings.git.descriptor_workers,
            deployments=ci_cd.processor,
        )

    def ready() -> bool:
        return (runner is None or runner.alive()) and queries.ready()

    def stop() -> None:
        if runner is not None:
            runner.stop()
        ci_cd.close()
        adapters.close()

    app = create_http_app(
        "Cairn",
        include,
        on_start=runner.start if runner else None,
        on_stop=stop,
        ready=ready,
        # The Kafka log's receivers produce on the server's loop: stop that producer there
        # (the processors may still publish until `stop` ends them).
        on_stop_async=getattr(adapters.log, "stop_async_producer", None),
    )
    host, port = settings.server.host, settings.server.port
    base = f"http://{host}:{port}"
    if "ingest" in roles and not settings.webhooks.github_secrets():
        if settings.webhooks.insecure_webhooks:
            print("cairn: --insecure-webhooks: unsigned webhooks are accepted.", file=sys.stderr)
        else:
            print(
                "cairn: no CAIRN_GITHUB_WEBHOOK_SECRET is set, so unsigned webhooks are refused "
                "(set one, or pass --insecure-webhooks on a trusted network).",
                file=sys.stderr,
            )
    if "api" in roles and not settings.api.tokens():
        print(
            "cairn: no CAIRN_API_TOKENS are set, so the catalog API (/api/catalog) is open "
            "to loopback clients only (set <token>:read and <token>:admin pairs to serve "
            "other hosts).",
            file=sys.stderr,
        )
    if demo_secret is not None:
        from services.demo.runner import run_demo

        threading.Thread(
            target=run_demo,
            args=(base, settings.adapters.data_dir / "demo", demo_secret, demo_token),
            name="cairn-demo",
            daemon=True,
        ).start()
    lines = [
        f"cairn: {', '.join(sorted(roles))} on {base} "
        f"(data in {settings.adapters.data_dir.resolve()})"
    ]
    if "ingest" in roles:
        lines.append(f"  webhooks:  POST {base}/webhooks/{{github,gitlab,gitea,forgejo,bitbucket}}")
        lines.append(f"  CI/CD:     POST {base}/events/cdevents, POST {base}/api/deployments")
    if "api" in roles:
        lines += [
            f"  search:    {base}/api/search?q=payment",
            f"  facets:    {base}/api/search?kind=component&owner=payments-team",
            f"  entity:    {base}/api/catalog/entities/by-name/component/default/payments-api",
            f"  locations: {base}/api/catalog/locations",
            f"  deployed:  {base}/api/deployments?environment=production",
        ]
    lines.append(f"  API docs:  {base}/docs    health: {base}/readyz")
    print("\n".join(lines), flush=True)
    settle_collector()
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=False)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    return serve(_settings(args), set(ROLES), demo=args.demo, log_level=args.log_level)


def cmd_role(role: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = _settings(args)
        if role == "processors" and settings.adapters.kafka_bootstrap:
            return run_faust_processors(settings, args.log_level)
        return serve(settings, {role}, demo=False, log_level=args.log_level)

    return run


def run_faust_processors(settings: Settings, log_level: str) -> int:
    """`cairn processors` with Kafka: the faust worker (one consumer group per processor)."""
    from processors.deployments import DeploymentProcessor
    from processors.faust_app import ProcessorResources, run_worker
    from services.wiring import (
        build_adapters,
        build_deployment_store,
        build_descriptor_processor,
        index_keeps_deployments,
    )

    def open_resources() -> ProcessorResources:
        adapters = build_adapters(settings)
        deployment_store = build_deployment_store(settings)
        return ProcessorResources(
            event_log=adapters.log,
            store=adapters.store,
            index=adapters.index,
            descriptor=build_descriptor_processor(settings, adapters),
            deployment_store=deployment_store,
            deployments=DeploymentProcessor(deployment_store),
        )

    return run_worker(
        settings,
        open_resources,
        log_level,
        index_keeps_deployments=index_keeps_deployments(settings),
    )


def _check_kafka_topics(settings: Settings) -> None:
    """Refuse to start on a cluster without Cairn's topics; a Kafka that is down is not an
    error here (the receivers answer 503 until it is back)."""
    from services.bus.topics_admin import missing_topics, physical_name
    from services.model.topics import ALL_TOPICS

    names = [physical_name(settings.kafka.kafka_namespace, t.name) for t in ALL_TOPICS]
    bootstrap = settings.adapters.kafka_bootstrap or ""
    try:
        absent = missing_topics(bootstrap, names, timeout=5)
    except LogUnavailable as exc:
        logging.getLogger("cairn").warning("%s Starting anyway.", exc)
        return
    if absent:
        raise ValueError(
            f"Topic(s) {', '.join(absent)} do not exist on {bootstrap}; "
            "create them with `cairn topics` first."
        )


def _kafka_bootstrap(settings: Settings, command: str) -> str:
    if not settings.adapters.kafka_bootstrap:
        raise ValueError(
            f"`cairn {command}` works on Kafka: set CAIRN_KAFKA_BOOTSTRAP (host:port[,host:port])."
        )
    return settings.adapters.kafka_bootstrap


def cmd_topics(args: argparse.Namespace) -> int:
    from services.bus.topics_admin import ensure_topics

    settings = _settings(args)
    partitions = args.partitions or settings.adapters.topic_partitions
    replication = args.replication or settings.adapters.topic_replication
    states = ensure_topics(
        _kafka_bootstrap(settings, "topics"),
        partitions,
        replication,
        namespace=settings.kafka.kafka_namespace,
    )
    mismatched = 0
    for state in states:
        if state.created:
            print(f"cairn: created {state.name} ({state.partitions} partitions)")
        elif state.partitions != partitions:
            mismatched += 1
            print(
                f"cairn: {state.name} exists with {state.partitions} partitions, not "
                f"{partitions}; left unchanged (changing it would reorder keys). Set "
                f"CAIRN_TOPIC_PARTITIONS={state.partitions} to match it.",
                file=sys.stderr,
            )
        else:
            print(f"cairn: {state.name} exists ({state.partitions} partitions)")
    return 1 if mismatched else 0


def cmd_replay(args: argparse.Namespace) -> int:
    from processors import deployments as ci
    from services.bus.topics_admin import GroupActive, physical_name, reset_group_to_beginning
    from services.model.topics import DEPLOYMENTS, ENTITY_CHANGES, GIT_EVENTS

    settings = _settings(args)
    namespace = settings.kafka.kafka_namespace
    group = args.group if args.group.startswith("cairn-") else f"cairn-{args.group}"
    own = {
        "cairn-descriptor": (GIT_EVENTS.name,),
        ci.GROUP: ci.TOPICS,
        ci.INDEX_GROUP: (DEPLOYMENTS.name,),
    }
    default = own.get(group, (ENTITY_CHANGES.name,))
    topics = [physical_name(namespace, topic) for topic in (args.topic or default)]
    try:
        count = reset_group_to_beginning(
            _kafka_bootstrap(settings, "replay"), physical_name(namespace, group), topics
        )
    except GroupActive as exc:
        print(f"cairn: {exc}", file=sys.stderr)
        return 1
    print(
        f"cairn: {group} will re-read {', '.join(topics)} from the beginning "
        f"({count} partitions reset) when its processors start"
    )
    return 0


def cmd_resync(args: argparse.Namespace) -> int:
    from processors.embedded import request_resync
    from services.wiring import build_log, build_store

    settings = _settings(args)
    event_log, store = build_log(settings), build_store(settings)
    try:
        count = request_resync(event_log, store, "requested from the command line", args.repository)
    finally:
        event_log.close()
        store.close()
    if args.repository and count == 0:
        print(f"cairn: no active repository {args.repository!r} is known.", file=sys.stderr)
        return 1
    print(f"cairn: resync requested for {count} repositories")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from services.store import schema

    settings = _settings(args)
    raw = settings.adapters.database_url
    if raw is None or not raw.get_secret_value().strip():
        print(
            "cairn: `cairn db` manages the PostgreSQL store: set CAIRN_DATABASE_URL "
            "(the embedded SQLite store creates its own tables).",
            file=sys.stderr,
        )
        return 2
    url = schema.database_url(raw.get_secret_value())
    where, head = schema.safe_url(url), schema.head_revision()
    before = schema.current_revision(url)
    if args.db_command == "current":
        if before == head:
            print(f"{before} (head)")
            return 0
        if before is not None and before not in schema.known_revisions():
            print(f"{before} (unknown to this Cairn, whose head is {head}: a newer one migrated)")
            return 1
        print(f"{before or 'none'} (head is {head}: run `cairn db upgrade`)")
        return 1
    after = schema.upgrade(url)
    if before == after:
        print(f"cairn: {where} is already at {after} (head)")
    else:
        print(f"cairn: {where} upgraded from {before or 'an empty schema'} to {after} (head)")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from services.index.port import IndexUnavailable
    from services.index.reindex import reindex
    from services.wiring import build_deployment_store, build_index, build_store

    settings = _settings(args)
    store, index = build_store(settings), build_index(settings)
    deployments = build_deployment_store(settings)
    total = store.count_entities()

    def progress(done: int) -> None:
        if done % 10_000 < args.batch_size or done == total:
            print(f"cairn: {done}/{total} entities written", file=sys.stderr, flush=True)

    try:
        result = reindex(
            store, index, batch_size=args.batch_size, progress=progress, deployments=deployments
        )
    except IndexUnavailable as exc:
        print(f"cairn: {exc}", file=sys.stderr)
        return 1
    finally:
        index.close()
        deployments.close()
        store.close()
    print(
        f"cairn: reindexed {result.documents} entities in {result.seconds:.1f}s; "
        f"{result.description}"
    )
    return 0


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--data-dir", type=Path, help="where state is kept (default ./.cairn)")
    parser.add_argument("--insecure-webhooks", action="store_true", help="accept unsigned webhooks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cairn", description="Cairn, a live software catalog.")
    parser.add_argument("--config", type=Path, help="a dotenv-style file of CAIRN_* settings")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run every role in one process")
    _add_server_options(up)
    up.add_argument("--demo", action="store_true", help="create demo repositories and push them")
    up.set_defaults(func=cmd_up)
    for role, text in (
        ("ingest", "run the webhook receivers only"),
        ("processors", "run the processors only (health probes on --port)"),
        ("api", "run the search API only"),
    ):
        sub = commands.add_parser(role, help=text)
        _add_server_options(sub)
        sub.set_defaults(func=cmd_role(role))
    resync = commands.add_parser("resync", help="re-read repositories now (all, or one)")
    resync.add_argument("--data-dir", type=Path, help="where state is kept (default ./.cairn)")
    resync.add_argument("--repository", help="one repository key, e.g. github.com/acme/payments")
    resync.set_defaults(func=cmd_resync)
    reindex = commands.add_parser(
        "reindex",
        help="rebuild the search index from the store while searches go on (no downtime)",
    )
    reindex.add_argument("--data-dir", type=Path, help="where state is kept (default ./.cairn)")
    reindex.add_argument("--batch-size", type=int, default=1000, help="entities per bulk write")
    reindex.set_defaults(func=cmd_reindex)
    topics = commands.add_parser(
        "topics", help="create the Kafka topics that are missing (idempotent)"
    )
    topics.add_argument("--partitions", type=int, help="partitions per topic (default 12)")
    topics.add_argument("--replication", type=int, help="replication factor (default 1)")
    topics.set_defaults(func=cmd_topics)
    replay = commands.add_parser(
        "replay", help="make a stopped consumer group re-read its topic from the beginning"
    )
    replay.add_argument(
        "--group",
        required=True,
        help="store-projection, index-projection, descriptor, deployments or "
        "deployment-index (or a full group name)",
    )
    replay.add_argument(
        "--topic",
        action="append",
        help="topic to rewind (default: the group's own, cairn.entity.changes for projections)",
    )
    replay.set_defaults(func=cmd_replay)
    db = commands.add_parser("db", help="the PostgreSQL store's schema (Alembic migrations)")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser(
        "upgrade", help="apply the migrations to CAIRN_DATABASE_URL (safe to repeat or run at once)"
    ).set_defaults(func=cmd_db)
    db_commands.add_parser(
        "current", help="print the database's revision (exit 1 when it is behind the code)"
    ).set_defaults(func=cmd_db)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 0
    except ValueError as exc:
        print(f"cairn: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"cairn: {exc}", file=sys.stderr)
        return 1
    except LogUnavailable as exc:
        print(f"cairn: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
