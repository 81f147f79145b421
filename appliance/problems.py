"""Can this station do its job, and if not, what is wrong and what to do: the one place that says so.

The health endpoint (and through it the dashboard's banner and the container's healthcheck),
`appliance status`, the start-up log and `appliance firmware verify` all show what `find` returns,
so they can never disagree.  Pure: the I/O side (appliance/api/checkup.py) reads the store, the
firmware catalog, the recovery core's plans and the interface, and hands the facts in here.

A problem is **red** when the station cannot do its job for some phones (no firmware, no address
for a new phone, no link, a service down) and **amber** when it works but worse than it should.
`code` is stable (scripts and the dashboard key on it); `what` and `do` are for the tech at the
bench: plain words, the file to copy and where, the key to set, the cable to check.  No citations
here: they stay in the comments.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .text import clean

RED, AMBER = "red", "amber"
SEVERITIES = (RED, AMBER)
MAX_LISTED = 5           # names listed in one sentence before "and N more"
MAX_ERROR = 200          # characters of a service's last error quoted


@dataclass(frozen=True)
class Problem:
    code: str            # stable: "no-firmware", "no-target:CP-7965G", "service-down:tftp", ...
    severity: str        # RED: cannot do its job; AMBER: degraded
    what: str            # what is wrong, in plain words
    do: str              # the exact action that fixes it

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "what": self.what, "do": self.do}

    def line(self) -> str:
        """One line for a log or a terminal: what is wrong, then what to do."""
        return f"{self.what} To fix: {self.do}"


@dataclass(frozen=True)
class Station:
    """The configuration as far as the problems need it (names in `do` point at these keys)."""
    config: str                      # the config file, as the tech would open it
    interface: str
    firmware_root: str
    dhcp_enabled: bool = True
    guard_mode: str = "refuse"
    guard_interval: float = 60.0


@dataclass(frozen=True)
class Library:
    """The firmware catalog: which loads are complete; `unreadable` says why the folder could not be read."""
    complete: tuple[str, ...] = ()
    incomplete: tuple[tuple[str, tuple[str, ...]], ...] = ()      # (load ID, missing files)
    unreadable: str | None = None


@dataclass(frozen=True)
class Seen:
    """What the recovery core plans for a model the station has seen a phone of (not yet recovered).

    The plans are the core's own (its Library's planner and its factory-reset defaults); nothing here
    decides a load, it only reads whether one was found.
    """
    model: str
    phones: int = 1
    protocol: str | None = None         # of the load the phones run, when known
    upgradable: bool = True             # False: its firmware comes with no .loads manifest (7937, 7902, ...)
    images: str | None = None           # what its firmware files are instead, when not upgradable
    target: str | None = None           # the load its phones are to end on; None: the library has none
    stone_missing: str | None = None    # the stepping stone its phones need and the library lacks, in words
    stone_certain: bool = False         # a phone's known load needs it (else only a phone of unknown load may)
    term: str | None = None             # termNN.default.loads a factory-reset phone of it asks; None: none
    reset_load: str | None = None       # the load a factory-reset phone is started on (the core's default)
    reset_term_found: bool = True       # a term file listing reset_load is in the library


@dataclass(frozen=True)
class Link:
    """The station's interface as the kernel reports it."""
    state: str                          # "up", "no-carrier", "admin-down", "missing", "unknown"
    present: tuple[str, ...] = ()       # interface names that do exist (for "missing")
    detail: str = ""


@dataclass(frozen=True)
class Facts:
    """Everything `find` judges.  None for a part means "not judged" (at start-up nothing runs yet)."""
    station: Station
    library: Library | None = None
    seen: tuple[Seen, ...] = ()
    link: Link | None = None
    services: tuple[dict[str, Any], ...] | None = None   # views.health rows: name, expected, status, last_error
    guard: dict[str, Any] | None = None                  # DHCP's published guard status
    pool: dict[str, Any] | None = None                   # DHCP's published pool status
    extra: tuple[Problem, ...] = field(default=())


def find(facts: Facts) -> list[Problem]:
    """Every problem the facts show, red first, each code once.

    Args:
        facts: what the I/O side read; a part left None is not judged.
    Returns:
        Problems sorted red before amber, then in the order of the rows below (link, firmware, DHCP,
        services); an empty list when the station can do its job.
    """
    st = facts.station
    out: list[Problem] = []
    link_down = False
    if facts.link is not None:
        p = link_problem(st, facts.link)
        if p is not None:
            out.append(p)
            link_down = True
    if facts.library is not None:
        out += library_problems(st, facts.library)
        empty = not facts.library.complete
        for seen in facts.seen:
            out += model_problems(st, seen, empty)
    if st.dhcp_enabled:
        dhcp_up = facts.services is None or any(s.get("name") == "dhcp" and s.get("status") == "up"
                                                for s in facts.services)
        if facts.guard is not None and dhcp_up:
            out += guard_problems(st, facts.guard, link_down)
        if facts.pool is not None and dhcp_up:
            out += pool_problems(st, facts.pool)
    if facts.services is not None:
        out += service_problems(facts.services)
    out += facts.extra
    unique: dict[str, Problem] = {}
    for p in out:
        unique.setdefault(p.code, p)
    return sorted(unique.values(), key=lambda p: SEVERITIES.index(p.severity))


def red(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == RED]


def _names(names: list[str] | tuple[str, ...]) -> str:
    names = [clean(str(n), 64) for n in names]
    if len(names) > MAX_LISTED:
        return ", ".join(names[:MAX_LISTED]) + f" and {len(names) - MAX_LISTED} more"
    return ", ".join(names)


# ---- the link ------------------------------------------------------------------------------------------

def link_problem(st: Station, link: Link) -> Problem | None:
    iface = clean(st.interface, 64)
    if link.state == "up" or link.state == "unknown":
        return None
    if link.state == "missing":
        others = _names(link.present) or "none"
        return Problem("link-down", RED,
                       f"There is no network interface named {iface} on this machine, so no phone can reach "
                       "the station.",
                       f"Set [network] interface in {st.config} (or APPLIANCE_NETWORK_INTERFACE) to the port "
                       f"cabled to the bench switch (interfaces here: {others}), then restart the station.")
    if link.state == "admin-down":
        return Problem("link-down", RED,
                       f"The network interface {iface} is switched off, so no phone can reach the station.",
                       f"Switch it on: sudo ip link set {iface} up")
    return Problem("link-down", RED,
                   f"The network interface {iface} has no link (cable unplugged or switch off), so no phone "
                   "can reach the station.",
                   f"Plug {iface} into the bench switch the phones are on and check the switch has power; "
                   f"`ip link show {iface}` says LOWER_UP once the link is back.")


# ---- the firmware library -----------------------------------------------------------------------------

COPY_HINT = ("the phones' firmware packages as Cisco ships them (cmterm-*.zip, *.cop.sgn, or the loose "
             ".loads and component files)")


def empty_library(st: Station, lib: Library) -> Problem:
    """The red "no-firmware" row: also what `appliance firmware verify` prints on an empty library."""
    root = clean(st.firmware_root, 512)
    if lib.unreadable:
        what = f"The firmware folder {root} cannot be read ({clean(lib.unreadable, MAX_ERROR)}), so no phone " \
               "can be upgraded."
        do = f"Create {root} (or set [tftp] root in {st.config} to the folder that holds the firmware) and " \
             f"copy {COPY_HINT} into it."
    elif lib.incomplete:
        what = (f"No load in the firmware folder {root} is complete, so no phone can be upgraded: "
                + "; ".join(f"{clean(i, 64)} lacks {_names(m)}" for i, m in lib.incomplete[:MAX_LISTED]) + ".")
        do = (f"Copy the whole package of each load (the cmterm-*.zip or *.cop.sgn it came in) into {root}; "
              "`appliance firmware verify` lists what is still missing.")
    else:
        what = f"The firmware folder {root} holds no phone firmware, so no phone can be upgraded."
        do = (f"Copy {COPY_HINT} into {root}: for a 7965 on 8.3(2), both the 8.5(2) stepping stone "
              "cmterm-7945_7965-sccp.8-5-2.zip and its target, e.g. cmterm-7945_7965-sccp.9-4-2SR4-3.zip. "
              "The station finds them within seconds; `appliance firmware list` shows what it found.")
    return Problem("no-firmware", RED, what, do)


def library_problems(st: Station, lib: Library) -> list[Problem]:
    if not lib.complete:
        return [empty_library(st, lib)]
    if not lib.incomplete:
        return []
    root = clean(st.firmware_root, 512)
    return [Problem("firmware-incomplete", AMBER,
                    f"Some loads in {root} are incomplete and are not offered to phones: "
                    + "; ".join(f"{clean(i, 64)} lacks {_names(m)}" for i, m in lib.incomplete[:MAX_LISTED]) + ".",
                    f"Copy the whole package of each (the cmterm-*.zip or *.cop.sgn it came in) into {root}; "
                    "`appliance firmware verify` lists what is still missing.")]


def _package_hint(model: str, protocol: str | None) -> str:
    digits = "".join(c for c in model if c.isdigit())[:4] or clean(model, 32)
    proto = f" {protocol.upper()}" if protocol else ""
    return f"the{proto} firmware package for the {digits} (a cmterm-*.zip or *.cop.sgn naming {digits})"


def model_problems(st: Station, seen: Seen, empty_library: bool) -> list[Problem]:
    """The rows for one model the station has phones of: no target, no stone, no start after a factory reset."""
    model = clean(seen.model, 64) or "unknown model"
    root = clean(st.firmware_root, 512)
    phones = f"{seen.phones} {model} phone" + ("s" if seen.phones != 1 else "")
    if not seen.upgradable:
        # Models whose firmware has no .loads manifest cannot be walked through loads by a config.
        return [Problem(f"not-upgradable:{model}", AMBER,
                        f"The station has seen {phones}; this model takes its firmware as "
                        f"{clean(seen.images or 'images', 32)} files without a load manifest, so the station "
                        "cannot upgrade it.",
                        f"Upgrade the {model} by hand (its own upgrade tool or a call-control server); unplug it "
                        "from the bench.")]
    out: list[Problem] = []
    if seen.target is None:
        if empty_library:
            return []          # "no-firmware" already says it for every model
        proto = f" {seen.protocol.upper()}" if seen.protocol else ""
        out.append(Problem(f"no-target:{model}", RED,
                           f"The station has seen {phones}, but the firmware folder has no complete{proto} load "
                           f"for the {model}, so they cannot be upgraded.",
                           f"Copy {_package_hint(model, seen.protocol)} into {root}; if [upgrade] targets in "
                           f"{st.config} names a load for the {model}, copy that one or remove the line."))
        return out
    if seen.stone_missing:
        target = clean(seen.target, 64)
        if seen.stone_certain:
            what = (f"The station has seen {phones} whose load needs a stepping stone before {target}, and the "
                    "firmware folder has none: they would refuse the target (\"Auth Fail\" or \"File auth "
                    "error\").")
        else:
            # A phone whose load is not known yet (factory reset, or not announced) may or may not need it.
            what = (f"The station has seen {phones} whose load it does not know yet; if it is old, it needs a "
                    f"stepping stone before {target}, and the firmware folder has none.")
        out.append(Problem(f"no-stone:{model}", RED if seen.stone_certain else AMBER, what,
                           f"Copy {clean(seen.stone_missing, 160)} (its cmterm-*.zip or *.cop.sgn) into {root}."))
    if seen.term and (seen.reset_load is None or not seen.reset_term_found):
        term = clean(seen.term, 64)
        start = clean(seen.reset_load or "", 64)
        what = (f"A factory-reset {model} asks for {term} first, and no package in the firmware folder has one"
                + (f" for {start}" if start else "") + ", so a reset phone would loop asking for it.")
        do = (f"Copy the whole package of {start or 'the load a reset ' + model + ' starts on'} (the cmterm-*.zip "
              f"or *.cop.sgn it came in, which brings its {term}) into {root}.")
        out.append(Problem(f"no-start-for-factory-reset:{model}", RED, what, do))
    return out


# ---- DHCP -----------------------------------------------------------------------------------------------

def guard_problems(st: Station, guard: dict[str, Any], link_down: bool) -> list[Problem]:
    status = str(guard.get("status") or "")
    mode = str(guard.get("mode") or st.guard_mode)
    servers = _names([str(s) for s in guard.get("servers") or []])
    iface = clean(st.interface, 64)
    every = f"{st.guard_interval:g} s"
    if status == "refusing":
        return [Problem("dhcp-guard-blocked", RED,
                        f"Another DHCP server ({servers}) answers on {iface}, so the station gives phones no "
                        "address: it never competes with another server.",
                        f"Put the station and the phones on a switch of their own (unplug the uplink to the "
                        f"rest of the network), or switch off the DHCP server at {servers}. The station checks "
                        f"again every {every} and serves once nothing else answers.")]
    if status == "warning":
        return [Problem("dhcp-other-server", AMBER,
                        f"Another DHCP server ({servers}) answers on {iface}, and the station serves anyway "
                        "([dhcp] guard = \"warn\"): a phone may take the other server's address and never "
                        "reach the station.",
                        f"Put the station and the phones on a switch of their own, or switch off the DHCP server "
                        f"at {servers}.")]
    if status == "unknown" and guard.get("not_probed") and not link_down:
        why = clean(str(guard["not_probed"]), MAX_ERROR)
        if mode == "refuse" and not guard.get("serving"):
            return [Problem("dhcp-guard-unprobed", RED,
                            f"DHCP could not check {iface} for another DHCP server ({why}), so it gives phones "
                            "no address.",
                            f"Check that {iface} is up and has its address (`ip addr show {iface}`); the station "
                            f"probes again every few seconds and serves once a probe goes unanswered.")]
        return [Problem("dhcp-guard-unprobed", AMBER,
                        f"DHCP serves on {iface} without having checked for another DHCP server ({why}).",
                        "Make sure nothing else serves DHCP on the bench switch; check the station's log for "
                        "why the probe could not be made.")]
    return []


def pool_problems(st: Station, pool: dict[str, Any]) -> list[Problem]:
    def n(key: str) -> int:
        v = pool.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    if pool.get("exhausted"):
        return [Problem("pool-exhausted", RED,
                        f"DHCP has no free address for a new phone: {n('phones')} leased to phones, "
                        f"{n('others')} to other devices, {n('quarantined')} quarantined, of {n('size')}.",
                        f"Widen the pool ([dhcp] pool_start and pool_end in {st.config}) and restart the "
                        "station, or free addresses: `appliance leases` lists them, `appliance forget MAC` frees "
                        "one, and unplugging devices that are not phones frees theirs when their lease ends.")]
    if pool.get("others_full"):
        return [Problem("others-share-full", AMBER,
                        f"Devices that are not phones hold their whole share of the pool ({n('others_share')} "
                        "addresses); another one gets no address (phones still do).",
                        f"Unplug devices that are not phones, or raise [dhcp] others_share in {st.config}; a "
                        "laptop that must always get in belongs in [dhcp.reservations].")]
    return []


# ---- services -------------------------------------------------------------------------------------------

SERVICE_JOBS = {
    "dhcp": "phones get no address",
    "tftp": "phones get no firmware and no configuration files",
    "api": "the dashboard and the status API are not served",
    "dns": "the station's names (recovery, tftp) do not resolve",
}


def service_problems(services: tuple[dict[str, Any], ...]) -> list[Problem]:
    expected = [s for s in services if s.get("expected")]
    if expected and all(s.get("status") == "down" and not s.get("last_error") for s in expected):
        return [Problem("station-not-running", RED,
                        "No service of the station is running: phones get no address, no files, no dashboard.",
                        "Start the station: `sudo -E make run` (or `appliance run` as root), or "
                        "`docker compose up` for the container.")]
    out = []
    for s in services:
        if not s.get("expected") or s.get("status") == "up":
            continue
        name = clean(str(s.get("name")), 32)
        status = "not running" if s.get("status") == "down" else "not answering (no recent heartbeat)"
        err = s.get("last_error")
        because = f" Its last error: {clean(str(err), MAX_ERROR)}." if err else ""
        out.append(Problem(f"service-down:{name}", RED,
                           f"The {name} service is {status}: {SERVICE_JOBS.get(name, 'its job is not done')}."
                           + because,
                           "Read why in the station's log (the terminal running `appliance run`, or "
                           "`docker logs` for the container), fix that, and restart the station "
                           "(`appliance run`, or `docker compose restart`)."))
    return out
