"""Store under concurrent writer processes: no event is lost or duplicated.

Why: every service writes the same SQLite file; a lost event is lost phone progress.
"""
from __future__ import annotations

import multiprocessing

from appliance.store import Store

WRITERS = 4
EVENTS_EACH = 150


def _writer(path: str, n: int) -> None:
    store = Store(path)
    for i in range(EVENTS_EACH):
        store.event(f"writer{n}", "test", None, seq=i)
    store.close()


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "state.db")
    Store(path).migrate()
    procs = [multiprocessing.Process(target=_writer, args=(path, n)) for n in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    events = Store(path).events_after(0, limit=10_000)
    seen = {(e["source"], e["data"]["seq"]) for e in events if e["kind"] == "test"}
    assert len(seen) == WRITERS * EVENTS_EACH
    assert len([e for e in events if e["kind"] == "test"]) == WRITERS * EVENTS_EACH
