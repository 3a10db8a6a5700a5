#!/usr/bin/env python3
"""Prove the project's client libraries work against the services of deploy/local/stack.

Usage:
    python deploy/local/check_clients.py [--restart] [CHECK ...]

CHECK is any of: kafka-python aiokafka faust psycopg opensearch (default: all).
--restart adds kafka-restart: `stack stop kafka` + `stack start kafka`, then checks the
broker is back on the same address and a producer that outlived the restart still works.

Settings come from CAIRN_KAFKA_BOOTSTRAP, CAIRN_DATABASE_URL and CAIRN_OPENSEARCH_URL, or,
when those are unset, from `deploy/local/stack env`. Needs kafka-python, aiokafka,
faust-streaming, psycopg[binary] and opensearch-py in the running interpreter.

Prints one line per check and a final "N passed, N failed" line; exits 1 on any failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
STACK = os.path.join(HERE, "stack")
KEYS = ("CAIRN_KAFKA_BOOTSTRAP", "CAIRN_DATABASE_URL", "CAIRN_OPENSEARCH_URL")
N_MESSAGES = 10


def load_settings() -> dict[str, str]:
    settings = {k: os.environ[k] for k in KEYS if os.environ.get(k)}
    if len(settings) < len(KEYS):
        out = subprocess.run(
            [STACK, "env"], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        ).stdout
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key in KEYS:
                settings.setdefault(key, value)
    return settings


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- checks: each returns a one-line description of what it proved ------------------------


def check_kafka_python(s: dict[str, str]) -> str:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    bootstrap = s["CAIRN_KAFKA_BOOTSTRAP"]
    topic = unique("check-kp")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="check-admin")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        described = admin.describe_topics([topic])
        partitions = len(described[0]["partitions"])
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=5)
    futures = [producer.send(topic, key=b"k%d" % i, value=b"v%d" % i) for i in range(N_MESSAGES)]
    producer.flush(timeout=30)
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=unique("check-kp-group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=30_000,
    )
    got: list[bytes] = []
    try:
        for msg in consumer:
            got.append(msg.value)
            if len(got) >= N_MESSAGES:
                break
        consumer.commit()
    finally:
        consumer.close()
    if sorted(got) != sorted(b"v%d" % i for i in range(N_MESSAGES)):
        raise AssertionError(f"consumed {len(got)}/{N_MESSAGES}: {got!r}")
    return (
        f"admin created {topic} ({partitions} partitions), produced {N_MESSAGES} with acks=all "
        f"(offsets up to {max(offsets)}), group consumer read {len(got)} and committed"
    )


def check_aiokafka(s: dict[str, str]) -> str:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    bootstrap = s["CAIRN_KAFKA_BOOTSTRAP"]
    topic = unique("check-aio")  # auto-created by the broker on first produce

    async def run() -> str:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(N_MESSAGES):
                await producer.send_and_wait(topic, b"a%d" % i)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=unique("check-aio-group"),
            auto_offset_reset="earliest",
        )
        await consumer.start()
        got = []
        try:
            async with asyncio.timeout(30):
                async for msg in consumer:
                    got.append(msg.value)
                    if len(got) >= N_MESSAGES:
                        break
            await consumer.commit()
        finally:
            await consumer.stop()
        if sorted(got) != sorted(b"a%d" % i for i in range(N_MESSAGES)):
            raise AssertionError(f"consumed {len(got)}/{N_MESSAGES}")
        return f"produced {N_MESSAGES} to auto-created {topic}, group consumer read {len(got)}"

    return asyncio.run(run())


FAUST_CHILD = r"""
import os, signal, sys
import faust

bootstrap, topic_name, app_id, out_path = sys.argv[1:5]
app = faust.App(
    app_id,
    broker=f"kafka://{bootstrap}",
    store="memory://",
    web_enabled=False,
    topic_partitions=1,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
)
topic = app.topic(topic_name, value_type=bytes, value_serializer="raw")

@app.agent(topic)
async def consume(stream):
    async for value in stream:
        with open(out_path, "wb") as f:
            f.write(value)
        os.kill(os.getpid(), signal.SIGTERM)

if __name__ == "__main__":
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()
"""


def check_faust(s: dict[str, str]) -> str:
    import faust  # noqa: F401  (fail early with ImportError if missing)
    from kafka import KafkaProducer

    bootstrap = s["CAIRN_KAFKA_BOOTSTRAP"]
    topic = unique("check-faust")
    app_id = unique("check-faust-app")
    payload = b"hello-faust"
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, payload).get(timeout=30)
    producer.close()

    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "faust_child.py")
        out_path = os.path.join(tmp, "got")
        with open(script, "w") as f:
            f.write(FAUST_CHILD)
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, script, bootstrap, topic, app_id, out_path],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        took = time.monotonic() - t0
        got = None
        if os.path.exists(out_path):
            with open(out_path, "rb") as f:
                got = f.read()
    if got != payload:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise AssertionError(f"faust worker exited {proc.returncode} without the message:\n{tail}")
    import faust as _f

    return (
        f"faust-streaming {_f.__version__} worker (app {app_id}) consumed {got!r} from {topic} "
        f"and shut down in {took:.1f}s (exit {proc.returncode})"
    )


def check_psycopg(s: dict[str, str]) -> str:
    import psycopg

    url = s["CAIRN_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, connect_timeout=10) as conn:
        version = conn.execute("show server_version").fetchone()[0]
        conn.execute("create temporary table check_t (id int primary key, name text)")
        conn.execute("insert into check_t values (1, 'one'), (2, 'two')")
        (n,) = conn.execute("select count(*) from check_t").fetchone()
        user, db = conn.execute("select current_user, current_database()").fetchone()
    if n != 2:
        raise AssertionError(f"expected 2 rows, got {n}")
    return f"connected as {user} to {db} on PostgreSQL {version}; temp table round trip ok"


def check_opensearch(s: dict[str, str]) -> str:
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[s["CAIRN_OPENSEARCH_URL"]], timeout=30)
    info = client.info()
    index = unique("check-os")
    client.indices.create(index=index, body={"settings": {"number_of_replicas": 0}})
    try:
        client.index(index=index, id="1", body={"name": "cairn catalog"}, refresh=True)
        res = client.search(index=index, body={"query": {"match": {"name": "catalog"}}})
        hits = res["hits"]["total"]["value"]
    finally:
        client.indices.delete(index=index)
    if hits != 1:
        raise AssertionError(f"expected 1 hit, got {hits}")
    health = client.cluster.health()["status"]
    return f"OpenSearch {info['version']['number']} ({health}): indexed, searched 1 hit in {index}"


def check_kafka_restart(s: dict[str, str]) -> str:
    from kafka import KafkaProducer

    bootstrap = s["CAIRN_KAFKA_BOOTSTRAP"]
    topic = unique("check-restart")
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        retries=20,
        retry_backoff_ms=500,
        reconnect_backoff_max_ms=2000,
        request_timeout_ms=20_000,
        delivery_timeout_ms=120_000,
    )
    producer.send(topic, b"before").get(timeout=30)

    def stack(*args: str, check: bool = True) -> str:
        return subprocess.run(
            [STACK, *args], capture_output=True, text=True, check=check, stdin=subprocess.DEVNULL
        ).stdout

    t0 = time.monotonic()
    stack("stop", "kafka")
    stopped = time.monotonic() - t0
    status = stack("status", "kafka", check=False)
    if "stopped" not in status:
        raise AssertionError(f"kafka not stopped: {status!r}")
    t1 = time.monotonic()
    out = stack("start", "kafka").strip()
    started = time.monotonic() - t1
    if out != f"CAIRN_KAFKA_BOOTSTRAP={bootstrap}":
        raise AssertionError(f"address changed: {out!r} != {bootstrap!r}")
    producer.send(topic, b"after").get(timeout=60)
    producer.close()
    return (
        f"stop {stopped:.1f}s, start {started:.1f}s on the same address {bootstrap}; "
        "a producer opened before the restart delivered again"
    )


CHECKS: dict[str, Callable[[dict[str, str]], str]] = {
    "kafka-python": check_kafka_python,
    "aiokafka": check_aiokafka,
    "faust": check_faust,
    "psycopg": check_psycopg,
    "opensearch": check_opensearch,
}


def main(argv: list[str]) -> int:
    restart = "--restart" in argv
    names = [a for a in argv if not a.startswith("-")] or list(CHECKS)
    checks = dict(CHECKS)
    if restart:
        checks["kafka-restart"] = check_kafka_restart
        if "kafka-restart" not in names:
            names.append("kafka-restart")
    unknown = [n for n in names if n not in checks]
    if unknown:
        print(
            f"unknown check(s): {', '.join(unknown)}; known: {', '.join(checks)}", file=sys.stderr
        )
        return 2
    logging.basicConfig(level=logging.CRITICAL, format="  (log) %(name)s: %(message)s")
    settings = load_settings()
    passed = failed = 0
    for name in names:
        t0 = time.monotonic()
        try:
            detail = checks[name](settings)
        except Exception as e:  # report and go on with the other checks
            failed += 1
            print(
                f"FAIL {name}: {type(e).__name__}: {e} ({time.monotonic() - t0:.1f}s)", flush=True
            )
            if os.environ.get("CHECK_VERBOSE"):
                traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {name}: {detail} ({time.monotonic() - t0:.1f}s)", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
