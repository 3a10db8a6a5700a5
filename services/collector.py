"""The garbage collector's settings for Cairn's long-running processes (every role)."""

from __future__ import annotations

import gc

# On CPython's default thresholds (700, 10, 10) a processor worker draining a backlog spent
# 20-35 % of its CPU collecting: its batches (fetched records, decoded changes, statement
# rows) outlive the young collections, get promoted, and trigger a full collection of the
# whole heap about once a second, each 120-440 ms. Collecting the young generation every
# 50,000 net allocations instead cut that to 4-9 % (BENCHMARKS.md, issue 3). Containers
# that are freed by reference counting never count toward it; only cycles wait longer.
YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 10


def settle_collector() -> None:
    """Once a process has built what it keeps for its lifetime (settings, modules, routes,
    pools): move those objects out of the collector's scans and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
