#!/usr/bin/env python3
"""Small stdlib-only helpers for deploy/local/stack.

Subcommands (all print to stdout, errors to stderr, exit 0 on success):

  ports N                         N distinct free TCP ports on 127.0.0.1, one a line
  cluster-id                      a random Kafka cluster id (base64url UUID)
  kafka-probe HOST PORT [TIMEOUT] ApiVersions + Metadata request; succeeds when the broker
                                  answers and lists at least one live broker
  opensearch-probe URL [TIMEOUT]  succeeds when /_cluster/health is green or yellow
  unzip ZIP DEST                  extract keeping the unix permission bits
  port-free PORT                  succeeds when nothing listens on 127.0.0.1:PORT
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import sys
import urllib.request
import uuid
import zipfile


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        ports: list[int] = []
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in ports:
                ports.append(port)
        return ports
    finally:
        for s in socks:
            s.close()


def cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


# --- Kafka wire protocol, just enough for a readiness probe -------------------------------


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def _kafka_call(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    client_id = b"cairn-stack-probe"
    header = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    payload = _recv_exact(sock, size)
    (got_corr,) = struct.unpack_from(">i", payload, 0)
    if got_corr != corr:
        raise RuntimeError(f"correlation id mismatch {got_corr} != {corr}")
    return payload[4:]


def kafka_probe(host: str, port: int, timeout: float) -> str:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        # ApiVersions v0: error_code, [api_key, min, max]
        resp = _kafka_call(sock, 18, 0, 1, b"")
        err, n = struct.unpack_from(">hi", resp, 0)
        if err != 0:
            raise RuntimeError(f"ApiVersions error {err}")
        apis = {}
        off = 6
        for _ in range(n):
            k, lo, hi = struct.unpack_from(">hhh", resp, off)
            apis[k] = (lo, hi)
            off += 6
        if 3 not in apis:
            raise RuntimeError("broker does not offer Metadata")
        # Metadata v1 with an empty topic list: brokers, controller_id, topics
        resp = _kafka_call(sock, 3, 1, 2, struct.pack(">i", 0))
        (nb,) = struct.unpack_from(">i", resp, 0)
        off = 4
        brokers = []
        for _ in range(nb):
            node_id, hlen = struct.unpack_from(">ih", resp, off)
            off += 6
            bhost = resp[off : off + hlen].decode()
            off += hlen
            (bport, rlen) = struct.unpack_from(">ih", resp, off)
            off += 6 + max(rlen, 0)
            brokers.append(f"{node_id}@{bhost}:{bport}")
        if not brokers:
            raise RuntimeError("metadata lists no live broker yet")
        return f"apis={len(apis)} brokers={','.join(brokers)}"


def opensearch_probe(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url.rstrip("/") + "/_cluster/health", timeout=timeout) as r:
        health = json.load(r)
    status = health.get("status")
    if status not in ("green", "yellow"):
        raise RuntimeError(f"cluster health {status}")
    return f"status={status}"


def unzip(zip_path: str, dest: str) -> None:
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if info.is_dir():
                os.chmod(target, 0o755)
            elif mode:
                os.chmod(target, mode | 0o444)
            else:
                os.chmod(target, 0o644)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    try:
        if cmd == "ports":
            print("\n".join(str(p) for p in free_ports(int(args[0]) if args else 1)))
        elif cmd == "cluster-id":
            print(cluster_id())
        elif cmd == "kafka-probe":
            timeout = float(args[2]) if len(args) > 2 else 3.0
            print(kafka_probe(args[0], int(args[1]), timeout))
        elif cmd == "opensearch-probe":
            timeout = float(args[1]) if len(args) > 1 else 3.0
            print(opensearch_probe(args[0], timeout))
        elif cmd == "unzip":
            unzip(args[0], args[1])
        elif cmd == "port-free":
            return 0 if port_free(int(args[0])) else 1
        else:
            print(f"unknown helper command {cmd}", file=sys.stderr)
            return 2
    except Exception as e:  # probes report why they failed; the caller retries
        print(f"{cmd}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
