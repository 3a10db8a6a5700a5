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

from services.settings import Settings

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


def serve(settings: Settings, roles: set[str], *, demo: bool, log_level: str) -> int:
    import uvicorn

    from ingest.receiver import create_ingest_router
    from processors.embedded import EmbeddedRunner
    from search_api.app import create_search_router, install_error_handlers
    from search_api.queries import CatalogQueries
    from services.wiring import build_adapters, build_descriptor_processor, create_http_app

    demo_secret = _demo_secret(settings) if demo else None
    adapters = build_adapters(settings)
    include: list[Callable[[FastAPI], None]] = []
    runner: EmbeddedRunner | None = None
    queries = CatalogQueries(adapters.store, adapters.index)
    if "ingest" in roles:
        router = create_ingest_router(settings.webhooks, adapters.log)
        include.append(lambda app: app.include_router(router))
    if "api" in roles:
        include.append(lambda app: app.include_router(create_search_router(queries)))
        include.append(install_error_handlers)
    if "processors" in roles:
        runner = EmbeddedRunner(
            adapters.log,
            adapters.store,
            adapters.index,
            build_descriptor_processor(settings, adapters),
            resync_interval=settings.git.resync_interval_seconds,
            descriptor_workers=settings.git.descriptor_workers,
        )

    def ready() -> bool:
        return (runner is None or runner.alive()) and queries.ready()

    def stop() -> None:
        if runner is not None:
            runner.stop()
        adapters.close()

    app = create_http_app(
        "Cairn", include, on_start=runner.start if runner else None, on_stop=stop, ready=ready
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
    if demo_secret is not None:
        from services.demo.runner import run_demo

        threading.Thread(
            target=run_demo,
            args=(base, settings.adapters.data_dir / "demo", demo_secret),
            name="cairn-demo",
            daemon=True,
        ).start()
    lines = [
        f"cairn: {', '.join(sorted(roles))} on {base} "
        f"(data in {settings.adapters.data_dir.resolve()})"
    ]
    if "ingest" in roles:
        lines.append(f"  webhooks:  POST {base}/webhooks/github")
    if "api" in roles:
        lines += [
            f"  search:    {base}/api/search?q=payment",
            f"  facets:    {base}/api/search?kind=component&owner=team-payments",
            f"  entity:    {base}/api/catalog/entities/by-name/component/default/payments-api",
            f"  locations: {base}/api/catalog/locations",
        ]
    lines.append(f"  API docs:  {base}/docs    health: {base}/readyz")
    print("\n".join(lines), flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=False)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    return serve(_settings(args), set(ROLES), demo=args.demo, log_level=args.log_level)


def cmd_role(role: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return serve(_settings(args), {role}, demo=False, log_level=args.log_level)

    return run


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


if __name__ == "__main__":
    sys.exit(main())
