"""Server-Sent Events tail of the `events` table.

Each stream is bounded in time (the browser's EventSource reconnects with
Last-Event-ID and resumes exactly), so a gthread worker thread is never held
for ever; a comment line every KEEPALIVE seconds keeps proxies from cutting it.
"""
from __future__ import annotations

import json
import time
from typing import Iterator

from ..store import Store
from . import views

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 10.0
MAX_STREAM_SECONDS = 60.0
BATCH = 200
RETRY_MS = 1000


def stream(store: Store, after: int, duration: float, mac: str | None = None) -> Iterator[str]:
    deadline = time.monotonic() + max(0.0, min(duration, MAX_STREAM_SECONDS))
    last_sent = time.monotonic()
    yield f"retry: {RETRY_MS}\n\n"
    try:
        while True:
            rows = store.events.after(after, limit=BATCH, mac=mac)
            for row in rows:
                after = row["id"]
                doc = views.event(row)
                yield f"id: {after}\nevent: {row['kind']}\ndata: {json.dumps(doc, default=str)}\n\n"
                last_sent = time.monotonic()
            if time.monotonic() >= deadline:
                return
            if rows and len(rows) == BATCH:
                continue
            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
            time.sleep(POLL_SECONDS)
    finally:
        store.close()


def latest_id(store: Store) -> int:
    return store.events.last_id()
