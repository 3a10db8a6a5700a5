"""The embedded event log: SQLite tables with topic, key and offset semantics.

One table holds every record; the offset is SQLite's row id, so it is monotonic across the
whole log (and therefore per key). A publish returns after the transaction commits with
`synchronous=FULL` in WAL mode, which is the durability the port promises. Consumers in
this process are woken by a condition variable the moment a record is committed; a short
timed re-check also picks up records written by another process on the same file.
One member per consumer group: the embedded default runs every role in one process.

`clean_up` keeps the file from growing without end, with Kafka's policies per topic: records
of a topic past its retention are deleted, and a compacted topic keeps only the newest
record of each key (once older than the compaction lag; a tombstone goes a day later).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from services.bus.port import LogRecord, OutgoingRecord, PublishResult
from services.model.topics import topic_named

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    offset INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_topic ON records (topic, offset);
CREATE INDEX IF NOT EXISTS records_by_key ON records (topic, key, offset);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic)
);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    offset INTEGER NOT NULL,
    ts REAL NOT NULL
);
"""

# How often an idle consumer re-reads the table for records another process wrote.
_CROSS_PROCESS_RECHECK_SECONDS = 0.5
_DAY = 24 * 60 * 60.0
# Kafka's min.compaction.lag.ms and delete.retention.ms as Cairn sets them.
_COMPACTION_LAG_SECONDS = 60 * 60.0
_TOMBSTONE_RETENTION_SECONDS = _DAY
# Deliveries are remembered as long as a Git host may redeliver one (days, not weeks).
_DELIVERY_RETENTION_SECONDS = 7 * _DAY
# Rows deleted per transaction, so publishers never wait long for the write lock.
_CLEANUP_CHUNK = 5000


def _connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SqliteEventLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._appended = threading.Condition()
        self._conn = _connect(path)
        self._conn.executescript(_SCHEMA)

    def publish(
        self, topic: str, key: str, value: bytes | None, *, delivery_id: str | None = None
    ) -> PublishResult:
        with self._write_lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if delivery_id is not None:
                    row = self._conn.execute(
                        "SELECT offset FROM deliveries WHERE delivery_id = ?", (delivery_id,)
                    ).fetchone()
                    if row is not None:
                        self._conn.execute("ROLLBACK")
                        return PublishResult(offset=int(row[0]), duplicate=True)
                offset = self._append(topic, key, value)
                if delivery_id is not None:
                    self._conn.execute(
                        "INSERT INTO deliveries (delivery_id, offset, ts) VALUES (?, ?, ?)",
                        (delivery_id, offset, time.time()),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        self._notify()
        return PublishResult(offset=offset)

    def publish_batch(self, records: Sequence[OutgoingRecord]) -> None:
        if not records:
            return
        with self._write_lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for record in records:
                    self._append(record.topic, record.key, record.value)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        self._notify()

    def _append(self, topic: str, key: str, value: bytes | None) -> int:
        cursor = self._conn.execute(
            "INSERT INTO records (topic, key, value, ts) VALUES (?, ?, ?, ?)",
            (topic, key, value, time.time()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _notify(self) -> None:
        with self._appended:
            self._appended.notify_all()

    def wait_for_append(self, timeout: float) -> None:
        with self._appended:
            self._appended.wait(timeout)

    def consumer(self, group: str, topics: Sequence[str]) -> SqliteConsumer:
        return SqliteConsumer(self, group, list(topics))

    def end_offsets(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT topic, MAX(offset) FROM records GROUP BY topic")
        return {topic: int(offset) for topic, offset in rows}

    def committed(self, group: str) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT topic, offset FROM consumer_offsets WHERE grp = ?", (group,)
        )
        return {topic: int(offset) for topic, offset in rows}

    def clean_up(self, now: float | None = None) -> dict[str, int]:
        """Apply each topic's retention or compaction, and forget old delivery ids; how
        many records went, per topic (and `deliveries`)."""
        now = time.time() if now is None else now
        removed: dict[str, int] = {}
        topics = [row[0] for row in self._conn.execute("SELECT DISTINCT topic FROM records")]
        for name in topics:
            topic = topic_named(name)
            if topic.compacted:
                count = self._delete_in_chunks(
                    "SELECT r.offset FROM records r WHERE r.topic = ? AND r.ts < ? AND ("
                    " EXISTS (SELECT 1 FROM records n"
                    "  WHERE n.topic = r.topic AND n.key = r.key AND n.offset > r.offset)"
                    " OR (r.value IS NULL AND r.ts < ?))",
                    (name, now - _COMPACTION_LAG_SECONDS, now - _TOMBSTONE_RETENTION_SECONDS),
                )
            else:
                count = self._delete_in_chunks(
                    "SELECT offset FROM records WHERE topic = ? AND ts < ?",
                    (name, now - topic.retention_days * _DAY),
                )
            if count:
                removed[name] = count
        count = self._delete_in_chunks(
            "SELECT rowid FROM deliveries WHERE ts < ?",
            (now - _DELIVERY_RETENTION_SECONDS,),
            table="deliveries",
            column="rowid",
        )
        if count:
            removed["deliveries"] = count
        return removed

    def _delete_in_chunks(
        self,
        select: str,
        params: tuple[object, ...],
        table: str = "records",
        column: str = "offset",
    ) -> int:
        total = 0
        while True:
            with self._write_lock:
                deleted = self._conn.execute(
                    f"DELETE FROM {table} WHERE {column} IN ({select} LIMIT {_CLEANUP_CHUNK})",
                    params,
                ).rowcount
            total += deleted
            if deleted < _CLEANUP_CHUNK:
                return total

    def close(self) -> None:
        self._conn.close()


class SqliteConsumer:
    def __init__(self, log: SqliteEventLog, group: str, topics: list[str]) -> None:
        self._log = log
        self._group = group
        self._topics = topics
        # Offsets need no fsync of their own: losing the last commit in a power cut only
        # repeats records, which every handler tolerates; appends stay FULL.
        self._conn = _connect(log.path, synchronous="NORMAL")
        committed = log.committed(group)
        self._positions = {topic: committed.get(topic, 0) for topic in topics}

    def poll(self, max_records: int, timeout: float) -> list[LogRecord]:
        deadline = time.monotonic() + timeout
        while True:
            records = self._read(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            self._log.wait_for_append(min(remaining, _CROSS_PROCESS_RECHECK_SECONDS))

    def _read(self, max_records: int) -> list[LogRecord]:
        clauses = " OR ".join("(topic = ? AND offset > ?)" for _ in self._topics)
        params: list[object] = []
        for topic in self._topics:
            params.extend((topic, self._positions[topic]))
        rows = self._conn.execute(
            f"SELECT offset, topic, key, value, ts FROM records WHERE {clauses} "
            "ORDER BY offset LIMIT ?",
            (*params, max_records),
        ).fetchall()
        records = [
            LogRecord(topic=topic, partition=0, offset=offset, key=key, value=value, timestamp=ts)
            for offset, topic, key, value, ts in rows
        ]
        for record in records:
            self._positions[record.topic] = record.offset
        return records

    def commit(self, records: Sequence[LogRecord]) -> None:
        latest: dict[str, int] = {}
        for record in records:
            latest[record.topic] = max(latest.get(record.topic, 0), record.offset)
        if not latest:
            return
        with self._conn:
            self._conn.executemany(
                "INSERT INTO consumer_offsets (grp, topic, offset) VALUES (?, ?, ?) "
                "ON CONFLICT (grp, topic) DO UPDATE SET offset = MAX(offset, excluded.offset)",
                [(self._group, topic, offset) for topic, offset in latest.items()],
            )

    def seek_to_beginning(self) -> None:
        self._positions = dict.fromkeys(self._topics, 0)
        with self._conn:
            self._conn.executemany(
                "DELETE FROM consumer_offsets WHERE grp = ? AND topic = ?",
                [(self._group, topic) for topic in self._topics],
            )

    def close(self) -> None:
        self._conn.close()
