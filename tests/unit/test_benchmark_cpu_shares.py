"""The benchmarks' CPU accounting: a process's CPU counts under its role, and what its
waited-for children used counts as that role's children."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.benchmarks.cpu_shares import CpuShares

# Burns about `seconds` of CPU, then (with "child") runs a child that burns as long and
# waits for it, as a worker waits for its git commands. What a process used is read
# while it lives, so one that exits at once after its child is not a worker's shape.
_BURN = """
import subprocess, sys, time
def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
burn(float(sys.argv[1]))
if sys.argv[2:3] == ["child"]:
    subprocess.run([sys.executable, "-c", sys.argv[3], sys.argv[1]], check=True)
    time.sleep(0.5)  # a worker lives on after its git commands: sampled after the wait
"""


def test_a_process_and_the_children_it_waited_for_count_under_its_role() -> None:
    with CpuShares({}) as idle:
        time.sleep(0.3)
    process = subprocess.Popen([sys.executable, "-c", _BURN, "0.6", "child", _BURN])
    with CpuShares({process.pid: "burner"}) as shares:
        process.wait(timeout=30)
    assert process.returncode == 0
    own, children = shares.own["burner"], shares.children["burner"]
    # About 0.6 s of CPU each: the process's own burn and its child's.
    assert own > 0 and children > 0
    assert abs(own - children) <= 0.5 * own
    report = shares.report(per=3, unit="thing")
    assert report.startswith("CPU: machine ") and "burner " in report and "ms/thing" in report
    assert "burner" not in idle.report()
