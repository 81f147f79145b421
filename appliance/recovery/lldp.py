"""lldpd for the station: the daemon's launcher (supervisor's `lldpd` program) and the poller feeding its claims.

lldpd receives CDP and LLDP; the station must never announce itself, so it runs
receive-only (`-r`, and `lldp status rx-only` in its config), with CDP
reception on (`-c`), bound to `[network] interface` (`-I`), with no neighbour
filtering (`-H 0`: lldpd's default, 15, hides every CDP neighbour of a port as
soon as one LLDP neighbour is on it, which is what a switch of mixed phones
looks like) and room for a 48-port bench (`configure system max-neighbors`,
default 32).  Its control socket and config are its own (under /run/lldpd-station,
see run_dir), so a host's lldpd and /etc/lldpd.d are left alone.

`python -m appliance.recovery.lldp` checks what lldpd needs (the binary, its
privilege-separation user, CAP_NET_RAW and the capabilities it drops privileges
with, the interface), says plainly what is missing and exits 0 (the station
runs on without it), else execs lldpd in the foreground.  `[upgrade] neighbours
= false` turns both the daemon and the poller off.

The poller runs in the file service's parent, next to the tracker's Hub: every
POLL_S it runs `lldpcli -f json show neighbors details` (details: without it
lldpcli leaves out the LLDP-MED inventory, where the software revision is),
reads it with neighbours.read, and posts each new or changed claim to the core
as LoadReported(how="cdp"/"lldp").  The core weighs it (neighbours.verdict: the
phone's own record outranks it) and holds a claim for a MAC that holds no lease
until its lease, which it applies first, so a phone CDP says is on the stone is
told its target in its first config.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pwd
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..logs import RateLimitedLog
from . import identify, neighbours
from .facts import LoadReported

log = logging.getLogger("neighbours")

RUN_DIR = Path("/run/lldpd-station")
SOCKET_NAME = "lldpd.socket"
CONF_NAME = "lldpd.conf"
LAUNCH_STAMP = "lldpd.launched"
MAX_NEIGHBOURS = 128        # per protocol on the interface: a 48-port bench of phones, with room for switches
POLL_S = 3.0
MIN_GAP_S = 0.5             # between polls however often leases wake the poller
LLDPCLI_TIMEOUT_S = 5.0
STARTUP_GRACE_S = 15.0      # lldpd starts beside the file service: no alarm while it comes up
LAUNCH_BACKOFF_S = 10.0     # a crash-looping lldpd is restarted at most this often
UNSTEADY_CHANGES = 4        # claims of one MAC changing this often within UNSTEADY_WINDOW_S are not believed
UNSTEADY_WINDOW_S = 600.0   # (two senders, one forged, taking turns: lldpd keeps the last frame's words)
PRIVSEP_USER = "_lldpd"
SOCKET_PATH_MAX = 107       # sun_path
# Capabilities lldpd needs as root: raw frames, then chroot and setuid/setgid to its privsep user.
NEEDED_CAPS = {"NET_RAW": 13, "SETGID": 6, "SETUID": 7, "SYS_CHROOT": 18}
SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
_LOG_PREFIX = re.compile(r"^\S+ \[\w+/\w+\] ")     # "2026-12-02T20:47:29 [WARN/control] " before lldpcli's words


def enabled(cfg) -> bool:
    return cfg.upgrade.neighbours


def run_dir(cfg) -> Path:
    """Where this station's lldpd keeps its control socket and config: /run, not the state dir.

    Debian's lldpcli is setuid _lldpd (and lldpd runs it, as _lldpd, to read its config), so both must be
    reachable by that user: a state dir under a 0700 directory is not.  One directory per state dir, so
    stations in separate namespaces (tests, benches) each talk to their own lldpd."""
    return run_dir_for(cfg.state.dir)


def run_dir_for(state_dir: str | Path) -> Path:
    return RUN_DIR / hashlib.sha1(str(Path(state_dir).resolve()).encode()).hexdigest()[:12]


def socket_path(cfg) -> Path:
    return run_dir(cfg) / SOCKET_NAME


def find(name: str) -> str | None:
    """lldpd/lldpcli on PATH or in the sbin directories (not always on a user's PATH)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    return shutil.which(name, path=path)


def conf_text() -> str:
    return ("# written by the recovery station (appliance/recovery/lldp.py) at each start\n"
            f"configure system max-neighbors {MAX_NEIGHBOURS}\n"
            "configure lldp status rx-only\n")


def command(cfg, exe: str = "lldpd") -> list[str]:
    """lldpd in the foreground (-d: logs on stderr), receive-only, CDP on, one interface, nothing hidden."""
    return [exe, "-d", "-r", "-c", "-H", "0", "-I", cfg.network.interface, "-u", str(socket_path(cfg)),
            "-O", str(run_dir(cfg) / CONF_NAME)]


def _caps(status_text: str | None = None) -> int:
    from ..supervise import effective_caps
    if status_text is None:
        try:
            status_text = Path("/proc/self/status").read_text()
        except OSError:
            return 0
    return effective_caps(status_text)


def why_not(cfg, status_text: str | None = None) -> str | None:
    """Why lldpd cannot run here (what to install or grant), or None."""
    if find("lldpd") is None:
        return "lldpd is not installed (Debian package lldpd)"
    if find("lldpcli") is None:
        return "lldpcli is not installed (Debian package lldpd)"
    try:
        pwd.getpwnam(PRIVSEP_USER)
    except KeyError:
        return f"lldpd's privilege-separation user {PRIVSEP_USER} does not exist (reinstall the lldpd package)"
    have = _caps(status_text)
    missing = [f"CAP_{name}" for name, bit in NEEDED_CAPS.items() if not have & (1 << bit)]
    if missing:
        return ("lldpd lacks " + ", ".join(missing) + " (raw frames need CAP_NET_RAW; lldpd drops privileges "
                "with chroot and setuid); compose: cap_add NET_RAW")
    iface = cfg.network.interface
    if not Path("/sys/class/net", iface).exists():
        return f"interface {iface} ([network] interface) does not exist"
    if len(str(socket_path(cfg))) > SOCKET_PATH_MAX:
        return f"control socket path {socket_path(cfg)} is longer than {SOCKET_PATH_MAX} bytes ([state] dir)"
    return None


# ---- the launcher -------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Supervisor's `lldpd` program: exec lldpd, or say why not and exit 0 (the station runs on without it)."""
    from .. import config as configmod
    from .. import logs
    logs.setup(os.environ.get("APPLIANCE_LOG_FORMAT", "text"), os.environ.get("APPLIANCE_LOG_LEVEL", "INFO").upper())
    try:
        cfg = configmod.load()
    except configmod.ConfigError as exc:
        print(f"appliance: bad config: {exc}", file=sys.stderr)
        return 2
    if not enabled(cfg):
        log.info("lldpd not started: [upgrade] neighbours = false (no CDP/LLDP load identification)")
        return 0
    why = why_not(cfg)
    if why:
        log.warning("lldpd not started: %s; the station runs on without CDP/LLDP load identification", why)
        return 0
    state = Path(cfg.state.dir).resolve()
    try:
        state.mkdir(parents=True, exist_ok=True)
        for d in (RUN_DIR, run_dir(cfg)):
            d.mkdir(exist_ok=True)
            d.chmod(0o755)            # lldpcli runs as _lldpd
        (run_dir(cfg) / CONF_NAME).write_text(conf_text())
        (run_dir(cfg) / CONF_NAME).chmod(0o644)
    except OSError as exc:
        log.warning("lldpd not started: %s; the station runs on without CDP/LLDP load identification", exc)
        return 0
    stamp = state / LAUNCH_STAMP
    try:
        since = time.time() - stamp.stat().st_mtime
    except OSError:
        since = LAUNCH_BACKOFF_S
    if 0 <= since < LAUNCH_BACKOFF_S:
        log.warning("lldpd restarted %.0f s after its last start: waiting %.0f s", since, LAUNCH_BACKOFF_S - since)
        time.sleep(LAUNCH_BACKOFF_S - since)
    stamp.touch()
    exe = find("lldpd") or "lldpd"
    argv = command(cfg, exe)
    log.info("starting %s (receive-only, CDP on, %s, max-neighbors %d)", " ".join(argv), cfg.network.interface,
             MAX_NEIGHBOURS)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(exe, argv)
    return 1     # not reached


# ---- the poller ---------------------------------------------------------------------------------------------
class Poller:
    """Reads lldpd's neighbours every POLL_S and hands new or changed load claims to the hub."""

    def __init__(self, cfg, catalog, hub, run=None):
        """
        Args:
            cfg: the station config ([network] interface, [state] dir, [upgrade] neighbours).
            catalog: the firmware catalog the claims are mapped against.
            hub: the core's Hub (`post`).
            run: () -> (text or None, why): the listing (tests pass their own; default runs lldpcli).
        """
        self.cfg, self.catalog, self.hub = cfg, catalog, hub
        self.sock = socket_path(cfg)
        self.run = run or self.lldpcli
        self._mu = threading.Lock()
        self.claims: dict[str, neighbours.Neighbour] = {}
        self.handled: dict[str, str] = {}        # mac -> the load (lower case) of its claim already posted
        self.counters = {"polls": 0, "failures": 0, "neighbours": 0, "claims": 0, "delivered": 0,
                         "conflicts": 0, "skipped": 0, "malformed": 0, "unsteady": 0}
        # lldpd keeps a broken frame's neighbour until it ages out (its TTL, up to minutes): said once a minute
        self._malformed_log = RateLimitedLog(log, per_window=1, window=60.0)
        self.status, self.ok = ("starting" if enabled(cfg) else "off ([upgrade] neighbours = false)"), False
        self._problems: set[str] = set()
        self._changes: dict[str, list[float]] = {}   # mac -> when its claim last changed (a few, recent)
        self._unsteady: dict[str, float] = {}        # mac -> until when its claims are not believed
        self._last: dict[str, str] = {}              # mac -> the load it claimed last (lower case)
        self._started = time.monotonic()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lldpcli ------------------------------------------------------------------------------------------
    def lldpcli(self) -> tuple[str | bytes | None, str]:
        exe = find("lldpcli")
        if exe is None:
            return None, why_not(self.cfg) or "lldpcli is not installed (Debian package lldpd)"
        try:
            r = subprocess.run([exe, "-u", str(self.sock), "-f", "json", "show", "neighbors", "details"],
                               capture_output=True, timeout=LLDPCLI_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None, f"lldpcli did not answer within {LLDPCLI_TIMEOUT_S:.0f} s"
        except OSError as exc:
            return None, f"lldpcli not run: {exc}"
        if r.returncode != 0:
            lines = r.stderr.decode("utf-8", "replace").strip().splitlines()
            said = identify.shown(_LOG_PREFIX.sub("", lines[-1]) if lines else f"exit status {r.returncode}")
            return None, why_not(self.cfg) or f"lldpd not answering on {self.sock}: {said}"
        return r.stdout, ""

    # ---- one poll -----------------------------------------------------------------------------------------
    def poll(self) -> None:
        text, why = self.run()
        self.counters["polls"] += 1
        if text is None:
            self.counters["failures"] += 1
            self._say(False, why)
            return
        reading = neighbours.read(text, self.catalog)
        if reading.malformed:
            self._malformed_log(time.monotonic(), "%d CDP/LLDP neighbour(s) lldpcli printed as broken JSON dropped "
                                "(a frame with control characters or quotes in its name); the other %d are read",
                                reading.malformed, len(reading.neighbours))
        new = [p for p in reading.problems if p not in self._problems]
        for p in new[:5]:
            log.info("neighbour not used: %s", p)
        self._problems = set(reading.problems)
        for mac, why_conflict in reading.conflicts.items():
            if self.handled.get(mac) != "conflict":
                log.warning("%s: %s", mac, why_conflict)
        with self._mu:
            self.claims = dict(reading.claims)
            for mac in list(self.handled):
                if mac not in reading.claims and mac not in reading.conflicts:
                    del self.handled[mac]          # gone from lldpd: a claim it makes again is news again
            for mac in reading.conflicts:
                self.handled[mac] = "conflict"
            pending = [c for mac, c in self.claims.items() if self.handled.get(mac) != (c.load or "").lower()]
        pending = self._steady(pending, reading)
        self.counters.update(neighbours=len(reading.neighbours), claims=len(reading.claims),
                             conflicts=len(reading.conflicts), skipped=reading.skipped, malformed=reading.malformed)
        self._say(True, f"reading CDP/LLDP neighbours on {self.cfg.network.interface}: "
                        f"{len(reading.neighbours)} neighbours, {len(reading.claims)} load claims")
        for claim in pending:
            self._hand(claim)

    def _steady(self, pending: list[neighbours.Neighbour], reading: neighbours.Reading) -> list[neighbours.Neighbour]:
        """Drop claims of MACs whose claimed load keeps changing: someone else is sending frames in its name."""
        now = time.monotonic()
        for table in (self._changes, self._unsteady, self._last):
            for gone in [m for m in table if m not in reading.claims]:
                del table[gone]
        for mac, claim in reading.claims.items():
            load = (claim.load or "").lower()
            if self._last.get(mac) == load:
                continue
            self._last[mac] = load
            times = [t for t in self._changes.get(mac, []) if now - t < UNSTEADY_WINDOW_S] + [now]
            self._changes[mac] = times[-UNSTEADY_CHANGES:]
            if len(times) >= UNSTEADY_CHANGES and self._unsteady.get(mac, 0.0) <= now:
                log.warning("%s: its announced load changed %d times in %.0f min (now %s): not believed for %.0f min",
                            mac, len(times), UNSTEADY_WINDOW_S / 60, claim.load, UNSTEADY_WINDOW_S / 60)
                self._unsteady[mac] = now + UNSTEADY_WINDOW_S
        kept = []
        for claim in pending:
            if self._unsteady.get(claim.mac or "", 0.0) > now:
                with self._mu:
                    self.claims.pop(claim.mac or "", None)        # nor at its lease
                continue
            kept.append(claim)
        self.counters["unsteady"] = sum(1 for until in self._unsteady.values() if until > now)
        return kept

    def _hand(self, claim: neighbours.Neighbour) -> None:
        """Post a new or changed claim to the core once; the core holds it until the MAC leases, and weighs it
        against the phone's own record (neighbours.verdict)."""
        load = claim.load or ""
        with self._mu:
            if not load or self.handled.get(claim.mac or "") == load.lower():
                return
            self.handled[claim.mac or ""] = load.lower()
        self.counters["delivered"] += 1
        log.info("%s: %s says it runs %s (%s%s)", claim.mac, claim.via, load, claim.platform or "no platform",
                 f", {claim.model}" if claim.model else "")
        self.hub.post(LoadReported(time.time(), claim.mac or "", load, claim.version, claim.how))

    def wake(self) -> None:
        """A phone leased: its announcement may be in lldpd already, so look now rather than in POLL_S."""
        self._wake.set()

    def _say(self, ok: bool, text: str) -> None:
        """Keep the status for the heartbeat; log when it turns good, or bad with a new reason."""
        grace = (not ok and time.monotonic() - self._started < STARTUP_GRACE_S and why_not(self.cfg) is None)
        status = f"waiting for lldpd to start ({text})" if grace else text
        if ok and not self.ok:
            log.info("%s", text)
        elif not ok and not grace and (self.ok or status != self.status):
            log.warning("CDP/LLDP load identification unavailable: %s", text)
        self.ok, self.status = ok, status

    # ---- thread -------------------------------------------------------------------------------------------
    def start(self) -> None:
        if not enabled(self.cfg) or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="neighbours", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.poll()
            except Exception as exc:      # a bug costs one poll, never the file service
                log.exception("neighbours: poll failed: %r", exc)
            self._wake.wait(POLL_S)
            self._wake.clear()
            self._stop.wait(max(0.0, MIN_GAP_S - (time.monotonic() - began)))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=LLDPCLI_TIMEOUT_S + 1)

    def info(self) -> dict:
        return {"status": self.status, "ok": self.ok, **self.counters}


def attach(cfg, catalog, hub) -> Poller:
    """The poller for the file service: started and hooked to the hub's leases unless [upgrade] neighbours = false."""
    poller = Poller(cfg, catalog, hub)
    if enabled(cfg):
        hub.neighbours = poller
        poller.start()
    else:
        log.info("CDP/LLDP load identification off ([upgrade] neighbours = false)")
    return poller


if __name__ == "__main__":
    sys.exit(main())
