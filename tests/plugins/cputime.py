"""Where the suite's CPU goes: with ``QBO_TEST_CPU=path``, every test's CPU seconds are appended to ``path``.

One JSON line per test phase (setup, call, teardown): the node id, the wall seconds, and the CPU seconds (user +
system) of this process (the in-process sandbox's threads included) and of the child processes it waited for
(``manage.py`` processes, clusters, bench workers). Each xdist worker appends to the same file.
``python -m tests.plugins.cputime path`` sums it by directory and lists the largest tests.

CPU time, unlike wall time, hardly depends on what else the machine runs, so it compares a change of the test loop
on a shared machine (docs/performance.md, "The test loop").
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _record(item: pytest.Item, phase: str) -> Iterator[None]:
    path = os.environ.get("QBO_TEST_CPU")
    if not path:
        yield
        return
    wall, (own, children) = time.perf_counter(), _cpu()
    yield
    own2, children2 = _cpu()
    with open(path, "a") as out:
        out.write(json.dumps({"test": item.nodeid, "phase": phase, "wall": round(time.perf_counter() - wall, 4),
                              "cpu": round(own2 - own, 4), "children_cpu": round(children2 - children, 4)}) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _record(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _record(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from _record(item, "teardown")


def summary(path: str, top: int = 30) -> str:
    by_dir: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    by_test: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    with open(path) as lines:
        for line in lines:
            row = json.loads(line)
            directory = "/".join(row["test"].split("::")[0].split("/")[:2])
            for key in (directory, "total"):
                by_dir[key][0] += row["wall"]
                by_dir[key][1] += row["cpu"] + row["children_cpu"]
            by_test[row["test"]][0] += row["wall"]
            by_test[row["test"]][1] += row["cpu"] + row["children_cpu"]
            by_test[row["test"]][2] += row["children_cpu"]
    out = [f"{'directory':<28} {'wall s':>9} {'CPU s':>9}"]
    for name, (wall, cpu, _) in sorted(by_dir.items(), key=lambda kv: -kv[1][1]):
        out.append(f"{name:<28} {wall:9.1f} {cpu:9.1f}")
    out.append(f"\nlargest {top} tests by CPU (wall s, CPU s, of which child processes):")
    for name, (wall, cpu, children) in sorted(by_test.items(), key=lambda kv: -kv[1][1])[:top]:
        out.append(f"{wall:8.1f} {cpu:8.1f} {children:8.1f}  {name}")
    return "\n".join(out)


if __name__ == "__main__":
    print(summary(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30))
