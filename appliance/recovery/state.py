"""The tracker's transitions as data, in the style of h11's `_state.py`.

A fact becomes a Signal once it is read against the phone's boot record
(tracker.py: a config asked after a manifest and components means INSTALLED,
after a manifest and nothing else REJECTED, ...).  TABLE maps (state, signal)
to the action the tracker runs and the states that action may end in; the
tracker checks every transition against it, and `python -m
appliance.recovery.state` prints the diagram in docs/tracker.md from it.
Pure: no I/O.
"""
from __future__ import annotations

import enum
import sys
from dataclasses import dataclass

from .facts import PhoneState as S


class Signal(enum.Enum):
    LEASE = "lease"                      # DHCP DISCOVER/ACK
    CONFIG = "config"                    # asked its config; nothing installed or refused since the last one
    INSTALLED = "installed"              # asked its config after taking a manifest and its files: runs that load now
    REJECTED = "rejected"                # took a manifest, no file of it, then asked its config or that manifest again
    MANIFEST = "manifest"                # .loads (or termNN.default.loads) sent
    COMPONENT = "component"              # a file of that manifest sent
    LOADER = "loader"                    # 7940/60 .sbn sent: the phone flashes it and reboots
    APP = "app"                          # 7940/60 .sb2 sent: the application, after that reboot
    OLD_APP = "old app"                  # 7940/60 took the .sb2, then asked for the same load again: old app booted
    SIGNED_CONFIG = "signed config"      # asked SEP<MAC>.cnf.xml.sgn: holds a trust list
    MISSING = "missing"                  # asked for firmware the station does not have
    REPORTED = "reported"                # its web page or CDP named its running load
    SETTLED = "settled"                  # took its config and fetched nothing for a while: it runs what it was told
    STALLED = "stalled"                  # a download stopped part way
    NO_RETURN = "no return"              # installed and never came back
    TRUST_TIMEOUT = "trust timeout"      # asked for the signed config and never took the unsigned one
    RETRY = "retry"                      # the tech restarted its plan


ANY = "*"
ACTIVE = (S.SEEN, S.CONFIGURED, S.DOWNLOADING, S.REBOOTING, S.WAITING, S.DONE)
ALL = (*ACTIVE, S.STUCK)


@dataclass(frozen=True)
class Transition:
    action: str                     # Tracker method "_<action>"
    targets: tuple[S, ...]          # states the action may end in
    why: str = ""


def _t(action: str, *targets: S, why: str = "") -> Transition:
    return Transition(action, targets, why)


SAME = ALL   # actions that may leave the state as it is
TABLE: dict[tuple[S | str, Signal], Transition] = {
    (ANY, Signal.LEASE): _t("lease_seen", *SAME,
                            why="new address or model; a trust-list phone re-leasing without its config is stuck"),
    (ANY, Signal.CONFIG): _t("configure", S.CONFIGURED, S.DONE, S.STUCK, why="names the plan's current step"),
    (S.STUCK, Signal.CONFIG): _t("configure_stuck", S.STUCK, S.CONFIGURED, S.DONE,
                                 why="a diagnosis stays until something changes: a file added, a retry"),
    (ANY, Signal.INSTALLED): _t("installed", S.CONFIGURED, S.DONE, S.STUCK, why="the step's load runs; next step"),
    (ANY, Signal.REJECTED): _t("rejected", S.CONFIGURED, S.STUCK,
                               why="next stone, else the target, else the file the tech must add"),
    (ANY, Signal.MANIFEST): _t("manifest", S.DOWNLOADING),
    (ANY, Signal.COMPONENT): _t("component", S.DOWNLOADING, S.REBOOTING),
    (ANY, Signal.LOADER): _t("loader", S.REBOOTING),
    (ANY, Signal.APP): _t("app", S.REBOOTING),
    (ANY, Signal.OLD_APP): _t("old_app", S.STUCK),
    (ANY, Signal.SIGNED_CONFIG): _t("signed_config", *SAME),
    (ANY, Signal.MISSING): _t("missing", S.STUCK),
    (ANY, Signal.REPORTED): _t("reported", *SAME),
    (S.DOWNLOADING, Signal.REPORTED): _t("keep", S.DOWNLOADING, why="mid-install the old load's page is stale"),
    (S.REBOOTING, Signal.REPORTED): _t("keep", S.REBOOTING),
    (S.CONFIGURED, Signal.SETTLED): _t("settled", S.DONE, S.WAITING),
    (S.DOWNLOADING, Signal.STALLED): _t("stalled", S.STUCK, S.CONFIGURED, S.REBOOTING,
                                        why="a manifest with no file after it is a rejection (Auth Fail)"),
    (S.REBOOTING, Signal.NO_RETURN): _t("no_return", S.STUCK),
    (ANY, Signal.TRUST_TIMEOUT): _t("trust_stuck", S.STUCK),
    (ANY, Signal.RETRY): _t("retry", S.SEEN),
}


def transition(state: S, signal: Signal) -> Transition | None:
    """The transition for a state and signal: the state's own row, else the ANY row, else None (ignored)."""
    return TABLE.get((state, signal)) or TABLE.get((ANY, signal))


def diagram() -> str:
    """docs/tracker.md: the table as Markdown and a Mermaid state diagram."""
    lines = ["# Recovery tracker: states and transitions", "",
             "Generated from `appliance/recovery/state.py` (`python -m appliance.recovery.state > docs/tracker.md`).",
             "A fact becomes a signal against the phone's boot record (`tracker.py`); this table says what each",
             "signal does in each state.", "", "| state | signal | action | may end in | why |", "|---|---|---|---|---|"]
    for (state, signal), t in TABLE.items():
        where = state.value if isinstance(state, S) else "any"
        ends = ", ".join(s.value for s in t.targets) if t.targets != SAME else "(any)"
        lines.append(f"| {where} | {signal.value} | {t.action} | {ends} | {t.why} |")
    lines += ["", "```mermaid", "stateDiagram-v2", "    [*] --> seen"]
    for state in ALL:
        for signal in Signal:
            found = transition(state, signal)
            if found is None or found.targets == SAME:
                continue
            for end in found.targets:
                if end != state:
                    lines.append(f"    {state.value} --> {end.value}: {signal.value}")
    lines += ["```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(diagram())
