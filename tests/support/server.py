"""Runs Cairn as a user would (`cairn up` in a subprocess) and drives it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from services.demo.github_payloads import GitHubRepoInfo, github_headers, push_payload

T = TypeVar("T")
CAIRN = Path(sys.executable).parent / "cairn"
# Every CairnProcess started and not yet stopped, so a failing test can show their logs.
RUNNING: list[CairnProcess] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy (tests only: never on a product path)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


@dataclass
class CairnProcess:
    data_dir: Path
    secret: str
    git_config: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    command: str = "up"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CairnProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
        env.update(
            {
                "CAIRN_GITHUB_WEBHOOK_SECRET": self.secret,
                "GIT_CONFIG_GLOBAL": str(self.git_config),
                "GIT_CONFIG_NOSYSTEM": "1",
            }
        )
        env.update(self.extra_env)
        log = (self.data_dir.parent / f"cairn-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(CAIRN),
                "--log-level",
                "INFO",
                self.command,
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.extra_args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        RUNNING.append(self)
        wait_until(self._ready, timeout=60, what=f"cairn up on {self.base_url}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"cairn up exited with {self.process.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self, full: bool = False) -> str:
        """The process's output: its last 4000 characters, or all of it with `full`."""
        path = self.data_dir.parent / f"cairn-{self.port}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text if full else text[-4000:]

    def stop(self, kill: bool = False) -> None:
        RUNNING[:] = [other for other in RUNNING if other is not self]
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    # --- as a Git host ---------------------------------------------------------------

    def send(
        self,
        event: str,
        payload: dict[str, Any] | bytes,
        *,
        delivery: str | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = github_headers(
            event, delivery or str(uuid.uuid4()), body, (secret or self.secret).encode()
        )
        sent.update(headers or {})
        return httpx.post(
            f"{self.base_url}/webhooks/github", content=body, headers=sent, timeout=30
        )

    def push(self, repo: GitHubRepoInfo, before: str, after: str, **kwargs: Any) -> httpx.Response:
        payload = push_payload(repo, f"refs/heads/{repo.default_branch}", before, after, [])
        return self.send("push", payload, **kwargs)

    def post_webhook(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST a delivery exactly as given (any Git host's body and headers) to `path`."""
        return httpx.post(f"{self.base_url}{path}", content=body, headers=headers, timeout=30)

    # --- as a developer --------------------------------------------------------------

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.base_url}{path}", params=params, timeout=30)

    def search(self, **params: Any) -> dict[str, Any]:
        response = self.get("/api/search", **params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def entity_when(
        self,
        kind: str,
        name: str,
        check: Callable[[dict[str, Any]], object] = lambda _entity: True,
        namespace: str = "default",
    ) -> dict[str, Any]:
        """The entity from the catalog API once it exists and passes `check`. The search
        index and the store are fed by separate consumers, so one may show a change a
        moment before the other."""
        return wait_until(
            lambda: (e := self.entity(kind, name, namespace)) is not None and check(e) and e,
            what=f"{kind}:{namespace}/{name} in the catalog API",
        )

    def entity(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        response = self.get(f"/api/catalog/entities/by-name/{kind}/{namespace}/{name}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return dict(response.json())
