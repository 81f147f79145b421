"""One owner per table: only the module the store's OWNERS names writes a table; everyone else asks it.

The check reads every call in appliance/ (AST): a write method of a repository called outside its
owner fails.  The API's "forget this lease" is then followed end to end through DHCP's lease book.
"""
from __future__ import annotations

import ast
import time
from pathlib import Path

from appliance import events as ev
from appliance.dhcp.leases import LeaseBook
from appliance.store import OWNERS, Store

REPO = Path(__file__).resolve().parent.parent
WRITES = {("leases", "save_changes"): "leases", ("kv", "put"): "kv", ("phones", "upsert"): "phones",
          ("transfers", "write"): "transfers", ("services", "beat"): "services", ("services", "error"): "services"}


def writes_in(path: Path) -> list[tuple[str, int]]:
    """(table, line) for each `<x>.<repository>.<write method>(...)` call in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Attribute):
            table = WRITES.get((node.func.value.attr, node.func.attr))
            if table:
                found.append((table, node.lineno))
    return found


def test_every_table_has_an_owner_that_exists():
    assert set(OWNERS) >= {table for table in WRITES.values()}
    for table, (owner, why) in OWNERS.items():
        assert (REPO / owner).exists(), f"{table}: owner {owner} does not exist"
        assert why


def test_only_the_owner_writes_its_table():
    bad, seen = [], set()
    for path in sorted((REPO / "appliance").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("appliance/store/"):
            continue
        for table, line in writes_in(path):
            seen.add(table)
            owner = OWNERS[table][0]
            if not (rel == owner or rel.startswith(owner + "/")):
                bad.append(f"{rel}:{line} writes {table}, owned by {owner}")
    assert not bad, "\n".join(bad)
    assert seen == set(WRITES.values()), "the check found no writer of some table: has a method been renamed?"


def test_the_check_catches_a_foreign_writer(tmp_path):
    path = tmp_path / "rogue.py"
    path.write_text("def f(store):\n    store.leases.save_changes([])\n    store.events.add('api', 'x')\n")
    assert writes_in(path) == [("leases", 2)]


def test_api_appends_only_commands():
    for path in sorted((REPO / "appliance" / "api").rglob("*.py")):
        assert writes_in(path) == [], path


def test_forget_is_executed_by_the_lease_book(tmp_path):
    """The API appends LEASE_FORGET; DHCP's book frees the address and its next save deletes the row."""
    store = Store(tmp_path / "s.db")
    now = time.time()
    book = LeaseBook("10.0.0.10", "10.0.0.20")
    book.load(*store.leases.book())
    lease = book.bind("001b2c3d4e5f", "10.0.0.11", now + 3600, now)
    store.leases.save_changes(book.take_pending())
    assert store.leases.of("001b2c3d4e5f")["ip"] == lease.ip
    store.events.add("api", ev.LEASE_FORGET, "001b2c3d4e5f")
    (command,), _ = store.events.commands_after(0, [ev.LEASE_FORGET])
    assert book.drop(command["mac"]) == "10.0.0.11"
    store.leases.save_changes(book.take_pending())
    assert store.leases.of("001b2c3d4e5f") is None
    assert book.drop("001b2c3d4e5f") is None and book.take_pending() == []
