"""Where a benchmark's CPU goes: each process's share of the machine while it ran, by role.

Samples /proc a few times a second on a thread of its own (each sample reads every
process's stat file: a few ms on this machine, well under 1 % of a core). A process counts
under the role its pid or command line names; the CPU of the short-lived children a
process waited for (a worker's git commands) counts as that role's children. What exited
between two samples without a waiting parent in a role is in the machine's total only.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> tuple[int, int] | None:
    """(own user+system ticks, waited-for children's ticks) of a process, None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _machine_busy_ticks() -> int:
    # The first line of /proc/stat: user nice system idle iowait irq softirq steal ...
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(v) for v in fields]
    return sum(values[:3]) + sum(values[5:8])


def _command_line(pid: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def stack_role(command_line: str) -> str | None:
    """The stack's services (deploy/local/stack) by their command lines."""
    if "kafka.Kafka" in command_line:
        return "kafka"
    if "org.opensearch.bootstrap" in command_line:
        return "opensearch"
    if command_line.startswith("postgres:") or "/bin/postgres " in command_line:
        return "postgres"  # a backend or the postmaster
    return None


class CpuShares:
    """`with CpuShares(pids): ...` samples while the block runs; `report()` after it.

    `pids` names the roles of known processes (the Cairn roles a benchmark started, the
    benchmark itself); every other process is placed by `stack_role` or not counted."""

    def __init__(
        self,
        pids: Mapping[int, str],
        *,
        other: Callable[[str], str | None] = stack_role,
        interval: float = 0.25,
    ) -> None:
        self._pids = {str(pid): role for pid, role in pids.items()}
        self._other = other
        self._interval = interval
        self._roles: dict[str, str | None] = {}
        self._last: dict[str, tuple[int, int]] = {}
        self.own: Counter[str] = Counter()
        self.children: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-shares", daemon=True)
        self.seconds = 0.0
        self._started = 0.0
        self._busy = 0

    def _role(self, pid: str) -> str | None:
        if pid not in self._roles:
            self._roles[pid] = self._pids.get(pid) or self._other(_command_line(pid))
        return self._roles[pid]

    def _sample(self, count: bool) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            role = self._role(pid)
            if role is None:
                continue
            ticks = _stat(pid)
            if ticks is None:
                continue
            before = self._last.get(pid)
            self._last[pid] = ticks
            if count:
                own_before, children_before = before or (0, 0)
                self.own[role] += ticks[0] - own_before
                self.children[role] += ticks[1] - children_before

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample(count=True)

    def __enter__(self) -> CpuShares:
        self._sample(count=False)
        self._busy = _machine_busy_ticks()
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(count=True)
        self.seconds = time.perf_counter() - self._started
        self._busy = _machine_busy_ticks() - self._busy

    def cpu_seconds(self, role: str) -> float:
        """CPU a role's processes used while sampled (their waited-for children apart)."""
        return self.own[role] / _TICKS

    def percent(self, ticks: int) -> float:
        """Ticks over the sampled time, as a percentage of one core."""
        return 100 * ticks / _TICKS / self.seconds if self.seconds else 0.0

    def report(self, per: int = 0, unit: str = "") -> str:
        """One line: the machine's busy share, then each role's (its waited-for children in
        brackets), biggest first; with `per`, also milliseconds of CPU per `unit`."""
        total = self.own + self.children
        cores = os.cpu_count() or 1
        parts = [f"machine {self.percent(self._busy):.0f} % of {cores * 100} %"]
        for role, ticks in total.most_common():
            own, children = self.own[role], self.children[role]
            text = f"{role} {self.percent(ticks):.0f} %"
            if self.percent(children) >= 0.5:
                text += f" ({self.percent(own):.0f} + children {self.percent(children):.0f})"
            if per:
                text += f" = {1000 * ticks / _TICKS / per:.1f} ms/{unit}"
            parts.append(text)
        return "CPU: " + ", ".join(parts)
