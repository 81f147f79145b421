"""The station's log line for each red problem that appears while it runs, and for its fix.

The API's heartbeat (every 2 s, in gunicorn's master) calls `Watch.tick`; what it says comes from
appliance/problems.py through the health view, so the log, /api/v1/health, `appliance status` and the
healthcheck say the same.  I/O (logging).
"""
from __future__ import annotations

import logging
import time

from .. import problems
from ..config import Config
from ..firmware.catalog import Catalog
from ..problems import Problem
from ..store import Store
from . import views

log = logging.getLogger("station")

# Rows `appliance run` already warned about when present at start (firmware, models seen, link): the watch
# says them only when they appear later.  The rest (DHCP, services) can only be seen once the station runs.
KNOWN_AT_START = ("no-firmware", "no-target:", "no-stone:", "no-start-for-factory-reset:", "link-down")
GRACE_S = 15.0           # services starting (a heartbeat every 2 s) are not "down" yet


class Watch:
    """The station's log line for each red problem that appears while it runs, and for its fix.

    Called on the API's heartbeat (every 2 s).  A red problem is said once it was found on two looks in a
    row (a heartbeat a little late is no news), after GRACE_S; those present at the first look that
    `appliance run` already warned about (KNOWN_AT_START) are not said again.
    """

    def __init__(self, cfg: Config, store: Store, started: float | None = None):
        self.cfg, self.store = cfg, store
        self.started = time.time() if started is None else started
        self.said: dict[str, Problem] = {}
        self.last: set[str] = set()
        self.first: dict[str, Problem] | None = None
        self.catalog = Catalog.from_config(cfg)

    def tick(self, now: float | None = None) -> list[str]:
        """Look once; log what changed.  Returns the red codes found (for the heartbeat); never raises."""
        now = time.time() if now is None else now
        try:
            doc = views.health(self.cfg, self.store, now, catalog=self.catalog)
        except Exception as exc:
            log.warning("problems not checked: %r", exc)
            return []
        found = {p["code"]: Problem(**p) for p in doc["problems"] if p["severity"] == problems.RED}
        if self.first is None:
            self.first = {c: p for c, p in found.items() if c.startswith(KNOWN_AT_START)}
        if now - self.started >= GRACE_S:
            for code, p in found.items():
                if code in self.last and code not in self.said and code not in self.first:
                    log.warning("station cannot do its job: %s", p.line())
                    self.said[code] = p
            for code in [c for c in [*self.said, *self.first] if c not in found]:
                fixed = self.said.pop(code, None) or self.first.pop(code)
                log.info("fixed: %s", fixed.what)     # once fixed, its return is news
        self.last = set(found)
        return sorted(found)
