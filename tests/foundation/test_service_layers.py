"""The services layer has no import cycles (imports inside functions count), and nothing in it imports the tasks
module: push and pull are independent, both depend on ``services/apply.py`` (docs/architecture.md, "Services")."""

from __future__ import annotations

import ast
from pathlib import Path

import qbo_sync

PACKAGE = Path(qbo_sync.__file__).parent
SERVICES = "qbo_sync.services"


def _modules() -> dict[str, Path]:
    mods = {f"{SERVICES}.{p.stem}": p for p in (PACKAGE / "services").glob("*.py") if p.stem != "__init__"}
    mods["qbo_sync.tasks"] = PACKAGE / "tasks.py"
    return mods


def _imports(path: Path, known: set[str]) -> set[str]:
    """The known modules ``path`` imports, anywhere in it (``from a import b`` counts for ``a`` and ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(p, set(mods)) - {m} for m, p in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_services_and_tasks_have_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles among qbo_sync.services + qbo_sync.tasks: " + "; ".join(
        " -> ".join(m.rsplit(".", 1)[-1] for m in c) for c in cycles)


def test_push_and_pull_are_independent_and_nothing_in_services_imports_tasks() -> None:
    graph = _graph()
    assert f"{SERVICES}.pull" not in graph[f"{SERVICES}.push"]
    assert f"{SERVICES}.push" not in graph[f"{SERVICES}.pull"]
    assert f"{SERVICES}.pull" not in graph[f"{SERVICES}.reconcile"]
    assert {f"{SERVICES}.push", f"{SERVICES}.pull", f"{SERVICES}.queue"}.isdisjoint(graph[f"{SERVICES}.apply"])
    assert not [m for m, targets in graph.items() if "qbo_sync.tasks" in targets]


#: The one module that changes a link's state (``EntityMapping``); everything else calls it.
LINK_WRITER = PACKAGE / "services" / "mappings.py"


def _link_writes(path: Path) -> list[str]:
    """Statements of ``path`` that write an EntityMapping: ``EntityMapping.objects…update/bulk_*``, ``mapping.save()``
    and assignments to ``mapping.<field>`` (also ``w.mapping.<field>``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"update", "save", "bulk_update", "bulk_create"}):
            receiver = ast.unparse(node.func.value)
            if "EntityMapping" in receiver or receiver.rsplit(".", 1)[-1] == "mapping":
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)[:80]}")
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            for target in node.targets:
                targets.extend(target.elts if isinstance(target, ast.Tuple) else [target])
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets.append(node.target)
        for target in targets:
            if isinstance(target, ast.Attribute) and ast.unparse(target.value).rsplit(".", 1)[-1] == "mapping":
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(target)} = …")
    return found


def test_links_change_state_only_through_the_mappings_service() -> None:
    writes = [line for path in sorted(PACKAGE.rglob("*.py"))
              if path != LINK_WRITER and "migrations" not in path.parts and "sandbox" not in path.parts
              for line in _link_writes(path)]
    assert writes == [], "EntityMapping written outside qbo_sync/services/mappings.py:\n" + "\n".join(writes)
    assert _link_writes(LINK_WRITER)  # the check sees the writes where they are
