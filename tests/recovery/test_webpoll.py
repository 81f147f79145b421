"""DeviceInformationX: the [upgrade] web_port key, the model phone's page (tools.phonesim), the real poller and
tracker over HTTP."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.request import urlopen

import pytest

from appliance.recovery import station
from appliance.recovery.webpoll import WebPoller, parse
from appliance.store import Store
from tests.conftest import REPO
from tools.phonesim import SimPhone

STONE, TARGET = "SCCP45.8-5-2S", "SCCP45.9-4-2SR4-3S"
MAC = "001e7a770001"


def check(env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "appliance", "check-config"], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("text", ["web_port = 70000", "web_port = -1", 'web_port = "http"', "web_port = true"])
def test_bad_web_port_exits_2_naming_the_key(tmp_path, station_env, text):
    path = tmp_path / "bad.toml"
    path.write_text(f"[upgrade]\n{text}\n")
    result = check({**station_env, "APPLIANCE_CONFIG": str(path)})
    assert result.returncode == 2, result.stdout
    assert "[upgrade] web_port" in result.stderr and str(path) in result.stderr


def test_bad_web_port_from_environment_names_the_variable(station_env):
    result = check({**station_env, "APPLIANCE_UPGRADE_WEB_PORT": "eighty"})
    assert result.returncode == 2 and "APPLIANCE_UPGRADE_WEB_PORT" in result.stderr


def test_web_port_read_from_config(station_env):
    from appliance import config
    assert station.web_port(config.load(environ=station_env)) == 80
    assert station.web_port(config.load(environ={**station_env, "APPLIANCE_UPGRADE_WEB_PORT": "0"})) == 0
    assert station.web_port(config.load(environ={**station_env, "APPLIANCE_UPGRADE_WEB_PORT": "8081"})) == 8081


def test_simulated_phone_page_is_read_by_the_real_poller():
    phone = SimPhone(MAC, "7965", STONE, web_port=0)
    poller = WebPoller(port=0)
    try:
        with phone.web_page("127.0.0.1") as port:
            with _status(port, "/x") as code:
                assert code == 404
            with urlopen(f"http://127.0.0.1:{port}/DeviceInformationX", timeout=5) as r:
                page = r.read()
            poller.port = port
            assert poller.poll(MAC, "127.0.0.1")
            got = _drain(poller, 10)
        # A 79x5 page as real ones are: the jar in appLoadID, the load ID in asterisks in versionID.
        fields = {"apploadid": "jar45sccp.8-5-2.sbn", "bootloadid": "tnp65.8-3-1-21a.bin",
                  "versionid": f"*{STONE}*", "modelnumber": "CP-7965G", "hardwarerevision": "1.0"}
        assert got == [(MAC, fields)]
        assert parse(page) == fields
        assert phone.device_information() is None     # the phone itself is not running: it serves no page
        with pytest.raises(OSError):          # the page stops with the phone
            urlopen(f"http://127.0.0.1:{port}/DeviceInformationX", timeout=2)
    finally:
        poller.close()


def _status(port: int, path: str):
    from contextlib import contextmanager
    from urllib.error import HTTPError

    @contextmanager
    def status():
        try:
            with urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                yield r.status
        except HTTPError as exc:
            yield exc.code
    return status()


def _drain(poller: WebPoller, seconds: float) -> list:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = poller.drain()
        if got:
            return got
        time.sleep(0.05)
    return []


def test_tracker_learns_the_load_from_the_phone_page_and_skips_the_stone(tmp_path, station_env):
    """A phone found on the stone through its own page is told the target directly, not the stone again."""
    from appliance import config
    from appliance.firmware import synth
    from appliance.firmware.catalog import Catalog
    from appliance.recovery.facts import Lease
    phone = SimPhone(MAC, "7965", STONE, web_port=0)
    with phone.web_page("127.0.0.1") as port:
        cfg = config.load(environ={**station_env, "APPLIANCE_UPGRADE_WEB_PORT": str(port)})
        for load in (STONE, TARGET):
            synth.write_zip(cfg.tftp.root, load, size_bytes=4_000)
        catalog = Catalog.from_config(cfg)
        catalog.scan()
        store = Store(cfg.db_path)
        hub = station.build_hub(cfg, catalog, store)
        hub.start()
        try:
            hub.post(Lease(time.time(), MAC, "127.0.0.1", True, "CP-7965G"))
            row = None
            for _ in range(100):
                row = store.phones.get(MAC)
                if row and row.get("current_load") == STONE:
                    break
                time.sleep(0.1)
            assert row and row["current_load"] == STONE and row["plan"] == [TARGET], row
            loads = [e for e in store.events.after(0, 100, mac=MAC) if e["kind"] == "phone.load"]
            assert loads and loads[-1]["data"] == {"load": STONE, "how": "web"}
            assert hub.table.of_mac(MAC).config == TARGET      # what its config names, from the workers' table
        finally:
            hub.stop()


def test_silent_phones_do_not_hold_up_the_one_with_a_page():
    """Most phones never answer; a poll waiting out its pause must not keep the page phone's poll queued."""
    import socket
    phone = SimPhone(MAC, "7965", STONE, web_port=0)
    with phone.web_page("127.0.0.3") as port, socket.socket() as silent:
        silent.bind(("127.0.0.2", port))
        silent.listen(16)                # handshakes complete, nothing ever answers
        poller = WebPoller(port=port)
        quiet = [f"00000000000{i}" for i in range(4)]
        try:
            assert all(poller.poll(m, "127.0.0.2") for m in quiet)
            assert poller.poll(MAC, "127.0.0.3")
            got = _drain(poller, 20)
            assert [m for m, _ in got] == [MAC] and set(quiet) <= poller.pending, poller.pending
        finally:
            poller.close()


class Drippers:
    """Phones whose page drips: every connection on `ip`:`port` gets the page one byte per `every` seconds (half of
    them from the first byte of the status line, half with the headers at once and the body dripping)."""

    def __init__(self, ip: str, port: int, every: float = 0.1):
        import socket
        import threading
        self.every, self.accepted, self.closed_by_poller = every, 0, 0
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        import threading
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            t = threading.Thread(target=self._drip, args=(conn, self.accepted % 2 == 0), daemon=True)
            self.threads.append(t)
            t.start()

    def _drip(self, conn, headers_at_once: bool) -> None:
        body = b"<DeviceInformation><versionID>*SCCP45.9-4-2SR4-3S*</versionID></DeviceInformation>" * 30
        head = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
        with conn:
            try:
                conn.recv(4096)
                if headers_at_once:
                    conn.sendall(head)
                    head = b""
                for byte in (head + body)[:600]:           # bounded: 600 bytes, 60 s at most
                    if self.stop.wait(self.every):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                self.closed_by_poller += 1                # the poller gave up on the page and closed it

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for t in self.threads:
            t.join(5)


def test_dripping_pages_never_keep_another_phones_page_from_being_read():
    """Each page has a deadline for the whole page, not per read, and slow pages are read side by side with
    the others: twelve phones dripping their pages (three times the old pool) while one phone's page answers."""
    phone = SimPhone(MAC, "7965", STONE, web_port=0)
    with phone.web_page("127.0.0.3") as port:
        drippers = Drippers("127.0.0.2", port)
        poller = WebPoller(port=port)
        slow = [f"0000000000{i:02d}" for i in range(12)]
        try:
            assert all(poller.poll(m, "127.0.0.2") for m in slow)
            time.sleep(0.3)                               # every dripping page is being read by now
            assert poller.poll(MAC, "127.0.0.3")
            got = _drain(poller, 20)
            assert [m for m, _ in got] == [MAC] and got[0][1]["versionid"] == f"*{STONE}*"
            # the first tries were cut at their deadline and the pages tried again: no slot held for good
            end = time.monotonic() + 20
            while (drippers.closed_by_poller < len(slow) or drippers.accepted <= len(slow)) and time.monotonic() < end:
                time.sleep(0.1)
            assert drippers.closed_by_poller >= len(slow) and drippers.accepted > len(slow)
            assert poller.drain() == []                   # a page never read whole is unknown, never a guess
        finally:
            poller.close()
            drippers.close()


def test_more_unfinished_pages_than_sockets_never_drop_or_delay_a_phones_first_read():
    """Phones whose pages never finish, more of them than the poller has sockets (renewing their leases keeps them
    polled): a new phone's first try still opens at once, cutting a later try short, and its page is read."""
    import socket

    from appliance.recovery import webpoll
    phone = SimPhone(MAC, "7965", STONE, web_port=0)
    with phone.web_page("127.0.0.3") as port, socket.socket() as silent:
        silent.bind(("127.0.0.2", port))
        silent.listen(256)               # handshakes complete, nothing ever answers
        poller = WebPoller(port=port)
        stuck = [f"0000000001{i:02x}" for i in range(webpoll.MAX_OPEN + 36)]
        try:
            assert all(poller.poll(m, "127.0.0.2") for m in stuck)
            time.sleep(webpoll.SCHEDULE[0][0] + webpoll.SCHEDULE[0][1] + 0.3)   # every socket holds a later try
            asked = time.monotonic()
            assert poller.poll(MAC, "127.0.0.3")
            got = _drain(poller, 10)
            took = time.monotonic() - asked
            assert [m for m, _ in got] == [MAC] and got[0][1]["versionid"] == f"*{STONE}*"
            assert took < webpoll.SCHEDULE[0][0], took
            assert set(stuck) <= poller.pending          # the others are still being tried, none lost
        finally:
            poller.close()


def test_a_7841_page_gives_its_vid_through_the_udi_lines():
    """The independent model's 7800 page (tools/phonesim/deviceinfo.py): <udi> is five lines, the VID the fourth."""
    from appliance.recovery.identify import hardware
    from tools.phonesim.deviceinfo import render
    from tools.phonesim.loadid import parse_load
    from tools.phonesim.models import FAMILY_MODELS

    running = parse_load("sip78xx.14-0-1-0301-212")
    assert running is not None
    body = render(FAMILY_MODELS["7841"], "001e7a782001", running, (), vid="V20", hardware_revision="2.1").encode()
    fields = parse(body)
    assert fields["versionid"] == "sip78xx.14-0-1-0301-212" and "\n" not in fields["udi"]
    assert hardware(fields) == ("V20", "2.1")
    hostile = body.replace(b"V20", b"V20\x07" + b"V" * 200)      # over MAX_VALUE: dropped whole, not cut short
    assert "udi" not in parse(hostile) and hardware(parse(hostile)) == (None, "2.1")
