import logging
import threading
import time
from types import SimpleNamespace

from appliance.firmware.versions import protocol as load_protocol
from appliance.recovery import runner
from appliance.recovery.plan import chooser
from appliance.store import Store


class FakeCatalog:
    def __init__(self, ids):
        self.ids = ids

    def loads_for_model(self, model, protocol=None):
        """Like Catalog.loads_for_model: oldest first, one protocol's when given."""
        return [SimpleNamespace(id=i, complete=True, protocol=load_protocol(i)) for i in self.ids
                if protocol in (None, load_protocol(i))]

    def newest_complete(self, model, protocol=None):
        return (self.loads_for_model(model, protocol) or [None])[-1]


def test_runner_tracks_events_from_real_store(tmp_path):
    store = Store(tmp_path / "s.db")
    store.migrate()
    cfg = SimpleNamespace(upgrade=SimpleNamespace(strategy="stepwise", targets={}, rules=[]))
    cat = FakeCatalog(["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"])
    ctx = SimpleNamespace(store=store, config=cfg, stopping=threading.Event(), log=logging.getLogger("t"))
    mac = "00:11:22:33:44:55"
    store.event("dhcp", "dhcp.ack", mac, ip="10.0.0.5", model="7965")
    th = runner.start(ctx, cat)
    try:
        for _ in range(200):
            row = store.phone(mac)
            if row and row["state"] == "seen":
                break
            time.sleep(0.1)
        assert row["plan"] == ["SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"]
        assert chooser(store, cat, cfg)(mac, "7965") == "SCCP45.8-5-2S"
        assert store.get(runner.CURSOR_KEY) >= 1
    finally:
        ctx.stopping.set()
        th.join(5)
