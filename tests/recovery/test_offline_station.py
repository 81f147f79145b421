"""The station's core and file layer against the independent phone model, with no sockets and simulated time.

What the file service does for each request, in-process: `Files.open` (the catalog, the generated configs
read from the core's answer table), then the facts it tells the core (`FileAsked` with what a config named,
`FileSent`, `FileMissing`), each DHCP ACK as a `Lease`, the core's timers when the clock passes
`next_deadline()`.  The phone is tools.phonesim's PhoneMachine driven by tools.phonesim.offline (its own
truth table; it imports nothing of the product).  A scenario of minutes runs in milliseconds, so realistic
firmware libraries can be tried here that the namespace tests would take minutes for.
"""
from __future__ import annotations

import pytest

from appliance import config
from appliance.firmware import synth
from appliance.firmware.catalog import Catalog
from appliance.firmware.generated import Generated, refused
from appliance.recovery.answers import AnswerTable
from appliance.recovery.facts import Answers, CatalogChanged, FileAsked, FileMissing, FileSent, Lease, Timer
from appliance.recovery.memory import diagnosis
from appliance.recovery.station import make_tracker
from appliance.tftp.files import Files
from tests.recovery.test_phone_behaviours import REPO
from tools.phonesim.loadid import parse_load
from tools.phonesim.machine import PhoneMachine, PhoneSpec
from tools.phonesim.models import model as find_model
from tools.phonesim.offline import drive

OLD, STONE, TARGET = "SCCP45.8-3-2S", "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
# What a depot's 7945/7965 folder tends to hold: several stones, the SR1 that is no stone, SIP loads too.
REALISTIC = ["SCCP45.8-4-4S", STONE, "SCCP45.8-5-2SR1S", "SCCP45.8-5-4S", "SCCP45.9-0-3S", "SCCP45.9-3-1SR4-1S",
             TARGET, "SIP45.8-5-2S", "SIP45.9-4-2SR3-1S"]
MAC, IP = "001E7A650301", "10.0.0.10"


class Station:
    """The core, a worker's answer table and the file layer, fed as the file service feeds them."""

    def __init__(self, tmp_path, loads: list[str], **env: str):
        root = tmp_path / "fw"
        for load in loads:
            synth.write_zip(root, load, size_bytes=4_000)
        self.cfg = config.load(environ={
            "APPLIANCE_CONFIG": str(REPO / "config" / "appliance.toml"), "APPLIANCE_NETWORK_INTERFACE": "lo",
            "APPLIANCE_TFTP_ROOT": str(root), "APPLIANCE_STATE_DIR": str(tmp_path / "state"), **env})
        cat = Catalog.from_config(self.cfg)
        cat.scan()
        self.root, self.catalog = root, cat
        self.core, self.table = make_tracker(cat, self.cfg), AnswerTable()
        self.files = Files(root, catalog=cat, generated=Generated(self.cfg, cat, self.table),
                           cache_dir=self.cfg.cache_dir, refused=refused)
        self.now = 1000.0

    def feed(self, event) -> None:
        while (d := self.core.next_deadline()) is not None and d <= self.now:
            self._apply(self.core.handle(Timer(d), d))
        self._apply(self.core.handle(event, self.now))

    def _apply(self, out) -> None:
        for o in out:
            if isinstance(o, Answers):
                self.table.apply(o)

    def lease(self, n: int) -> bool:
        self.feed(Lease(self.now, MAC.lower(), IP, True, "CP-7965G"))
        return True

    def serve(self, name: str, via: str) -> bytes | None:
        _, src = self.files.open(name, IP)
        if src is None:
            self.feed(FileMissing(self.now, IP, name, via))
            return None
        data = bytes(src.read(0, src.size))
        src.close()
        self.feed(FileAsked(self.now, IP, name, via, served=src.names))
        self.feed(FileSent(self.now, IP, name, via, result="complete", bytes=len(data), total=len(data)))
        return data

    def run(self, spec: PhoneSpec, until: float = 900.0) -> dict:
        start = self.now

        def tick(now, action):
            self.now = start + now
        machine = drive(PhoneMachine(spec), self.serve, ip=IP, lease=self.lease, on_action=tick, until=until,
                        max_steps=4000)
        return machine.summary()

    def add(self, load: str) -> None:
        """The tech copies a package in; the file service rescans and tells the core."""
        synth.write_zip(self.root, load, size_bytes=4_000)
        self.catalog.scan()
        self.feed(CatalogChanged(self.now))

    @property
    def phone(self):
        return self.core.phones[MAC.lower()]


def spec(start: str = OLD, **kw) -> PhoneSpec:
    return PhoneSpec(find_model("7965"), MAC, parse_load(start), reboot_s=3.0, **kw)


@pytest.mark.parametrize("loads", [[STONE, TARGET], REALISTIC], ids=["minimal", "realistic"])
@pytest.mark.parametrize("reset", [False, True], ids=["running", "factory-reset"])
def test_a_7965_on_832_ends_on_the_target_through_the_stone(tmp_path, loads, reset):
    """Issue 25 saw a factory-reset 7965 with a realistic library sit for two minutes, then be told to add a load
    the library held ("it refused ?"): here, with every load a depot tends to hold, it is not."""
    st = Station(tmp_path, loads)
    s = st.run(spec(factory_reset=reset))
    assert s["installed"] == [STONE, TARGET] and not s["refused"], s["refused"]
    p = st.phone
    assert (p.state.value, p.current) == ("done", TARGET), diagnosis(p)


def test_direct_strategy_auth_fail_then_the_stone(tmp_path):
    st = Station(tmp_path, REALISTIC, APPLIANCE_UPGRADE_STRATEGY="direct")
    s = st.run(spec())
    assert [r["screen"] for r in s["refused"]] == ["Auth Fail"] and s["installed"] == [STONE, TARGET]
    assert st.phone.state.value == "done" and st.phone.current == TARGET


def test_a_factory_reset_phone_without_a_stone_in_the_library_is_told_what_to_add(tmp_path):
    st = Station(tmp_path, [TARGET])
    s = st.run(spec(factory_reset=True), until=200.0)
    assert not s["installed"]
    words = diagnosis(st.phone) or ""
    # it stays stuck while it loops (it asks every few seconds), never flickering to "downloading"
    states = [state for _, state, _ in st.phone.timeline]
    assert "stuck" in states and "downloading" not in states[states.index("stuck"):], states
    assert st.phone.state.value == "stuck" and "term65.default.loads" in words and "8.3(3) to 8.5(2)" in words
    assert TARGET in words and "?" not in words and "§" not in words and "unknown" not in words
    st.add(STONE)                                  # the tech adds the stone; the phone goes on by itself
    s = st.run(spec(factory_reset=True))
    assert s["installed"] == [STONE, TARGET] and st.phone.state.value == "done"
