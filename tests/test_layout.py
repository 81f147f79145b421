"""The sans-I/O boundary, checked: pure modules import no I/O, directly, lazily or through another module;
and no import cycle inside appliance/ (issue 18).

A pure module (codec, state machine, policy, parser) takes bytes, facts and `now` and returns bytes,
facts and decisions; sockets, files, clocks, threads and the database live in the modules around it
(each package's README says which is which).  This test reads every import statement, including those
inside functions, and follows imports of the station's own modules.
"""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PURE = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]["files"]   # mypy checks the same list
IO = {"socket", "select", "selectors", "sqlite3", "threading", "multiprocessing", "time", "os", "subprocess",
      "shutil", "asyncio", "http", "urllib", "signal", "ctypes"}


def imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) for every import in the file, at any depth; relative imports made absolute."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1]) if REPO in path.parents else ""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                if not node.module:
                    out += [(f"{mod}.{a.name}", node.lineno) for a in node.names]
                    continue
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
    return out


def own_file(module: str) -> Path | None:
    parts = module.split(".")
    for candidate in (REPO.joinpath(*parts).with_suffix(".py"), REPO.joinpath(*parts, "__init__.py")):
        if candidate.exists():
            return candidate
    return None


def forbidden_imports(rel: str, forbidden: set[str]) -> tuple[list[str], int]:
    """(every import of a forbidden module by `rel` or anything of ours it imports, lazily or not; files read)."""
    seen, todo, bad = set(), [(REPO / rel, rel)], []
    while todo:
        path, via = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module, line in imports(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                bad.append(f"{via}:{line} imports {module}")
            elif module.split(".")[0] == "appliance":
                target = own_file(module) or own_file(module.rsplit(".", 1)[0])
                if target is not None and target != REPO / "appliance/__init__.py":
                    todo.append((target, f"{via} -> {target.relative_to(REPO)}"))
    return bad, len(seen)


@pytest.mark.parametrize("rel", PURE)
def test_pure_module_imports_no_io(rel):
    bad, _ = forbidden_imports(rel, IO)
    assert not bad, "\n".join(bad)


def test_every_pure_module_exists_and_each_package_states_the_rule():
    for rel in PURE:
        assert (REPO / rel).exists(), rel
    for package in ("dhcp", "tftp", "dns", "firmware", "recovery"):
        readme = REPO / "appliance" / package / "README.md"
        assert readme.exists(), readme
        text = readme.read_text()
        assert "pure" in text.lower() and "I/O" in text, readme


SQL = re.compile(r"\b(SELECT\s+[\w*(]|INSERT\s+(OR\s+\w+\s+)?INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|CREATE\s+(TABLE|INDEX))")


def test_sql_lives_only_in_the_store():
    """One place speaks SQL (the appliance/store package); everything else asks its repositories by name."""
    bad = []
    store = REPO / "appliance" / "store"
    for path in sorted((REPO / "appliance").rglob("*.py")):
        if store in path.parents:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if SQL.search(line):
                bad.append(f"{path.relative_to(REPO)}:{n}: {line.strip()[:80]}")
    assert not bad, "\n".join(bad)


def test_only_the_store_opens_the_database():
    """No module outside the store package imports sqlite3 or reaches for the store's private database."""
    store = REPO / "appliance" / "store"
    bad = []
    for path in sorted((REPO / "appliance").rglob("*.py")):
        if store in path.parents:
            continue
        bad += [f"{path.relative_to(REPO)}:{line}: imports {mod}" for mod, line in imports(path) if mod == "sqlite3"]
        bad += [f"{path.relative_to(REPO)}:{n}" for n, text in enumerate(path.read_text().splitlines(), 1)
                if "._db" in text]
    assert not bad, "\n".join(bad)


def cycles(graph: dict) -> list[list]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    found: list[list] = []

    def visit(v) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_cycle_inside_the_appliance():
    """Every import of the station's own modules, lazy ones too (a function-level import is how a cycle hides)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((REPO / "appliance").rglob("*.py")):
        edges = set()
        for module, _line in imports(path):
            if module.split(".")[0] != "appliance":
                continue
            target = own_file(module) or own_file(module.rsplit(".", 1)[0])     # `from pkg import name`
            if target is not None and target != path:
                edges.add(str(target.relative_to(REPO)))
        graph[str(path.relative_to(REPO))] = edges
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100, "the import graph was not read"
    assert cycles(graph) == []


CORE = "appliance/recovery/tracker.py"
# (Its data tables -- models, versions, rules -- are read from the package's .toml files once, at import.)
CLOSED = IO | {"logging", "appliance.store", "appliance.batch", "appliance.service", "appliance.logs", "io", "tempfile",
               "random"}


def test_the_recovery_core_is_closed():
    """The core (issue 23) and everything it imports, lazily or not: no store, clock, threads, sockets, files or
    logging.  What it needs from outside comes in as events and as the Library it is handed."""
    bad, read = forbidden_imports(CORE, CLOSED)
    assert read > 8, "the core's imports were not followed"
    assert not bad, "\n".join(bad)


def test_the_closed_check_catches_a_lazy_import(tmp_path):
    """The walk above reads imports inside functions too."""
    (tmp_path / "m.py").write_text("def f():\n    import logging\n    from appliance.store import Store\n")
    found = [m for m, _ in imports(tmp_path / "m.py") if any(m == c or m.startswith(c + ".") for c in CLOSED)]
    assert found == ["logging", "appliance.store"]


# What a config names is decided in the core: the planner is called only where the core's Library is built
# (station.py) and in plan.py itself; generated configs, HTTP and the workers read the core's answer table.
DECIDES = re.compile(r"\b(plan_phone|plan_for|make_plan|newest_complete|target_for)\s*\(")
MAY_DECIDE = {"appliance/recovery/plan.py", "appliance/recovery/station.py", "appliance/firmware/catalog.py"}


def test_nothing_else_decides_which_load_a_config_names():
    bad = []
    for path in sorted((REPO / "appliance").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        if rel in MAY_DECIDE:
            continue
        bad += [f"{rel}:{n}: {line.strip()[:80]}" for n, line in enumerate(path.read_text().splitlines(), 1)
                if DECIDES.search(line)]
    assert not bad, "\n".join(bad)
    generated = (REPO / "appliance/firmware/generated.py").read_text()
    assert "self.table." in generated and "catalog.newest" not in generated and "store" not in generated.lower()


def test_no_catch_all_in_pure_code():
    """A bug or a catalog error in a pure module is an error, never a silent "no answer" (issue 23)."""
    bad = []
    for rel in PURE:
        for node in ast.walk(ast.parse((REPO / rel).read_text())):
            if isinstance(node, ast.ExceptHandler) and (node.type is None or (
                    isinstance(node.type, ast.Name) and node.type.id in ("Exception", "BaseException"))):
                bad.append(f"{rel}:{node.lineno}")
    assert not bad, "\n".join(bad)
