"""The core's transitions as data, in the style of h2's `stream.py`: (state, signal) -> (action, end states).

A fact becomes a Signal once it is read against the phone's boot record
(signals.py).  TABLE maps (state, signal) to the action function the core
runs (actions.py, referenced directly) and the states that action may end
in; the core checks every transition against it, and `python -m
appliance.recovery.state` prints the diagram in docs/tracker.md from it.
Pure: no I/O.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

from . import actions as a
from .facts import PhoneState as S
from .signals import Signal

ANY = "*"
ACTIVE = (S.SEEN, S.CONFIGURED, S.DOWNLOADING, S.REBOOTING, S.WAITING, S.DONE)
ALL = (*ACTIVE, S.STUCK)
SAME = ALL   # actions that may leave the state as it is


@dataclass(frozen=True)
class Transition:
    action: Callable[..., list[Any]]     # actions.<name>(ctx, phone, ts, arg) -> outputs
    targets: tuple[S, ...]               # states the action may end in
    why: str = ""


def _t(action: Callable[..., list[Any]], *targets: S, why: str = "") -> Transition:
    return Transition(action, targets, why)


TABLE: dict[tuple[S | str, Signal], Transition] = {
    (ANY, Signal.LEASE): _t(a.lease_seen, *SAME,
                            why="new address or model; a trust-list phone re-leasing without its config is stuck"),
    (ANY, Signal.CONFIG): _t(a.configure, S.CONFIGURED, S.DONE, S.STUCK, why="names the plan's current step"),
    (S.STUCK, Signal.CONFIG): _t(a.configure_stuck, S.STUCK, S.CONFIGURED, S.DONE,
                                 why="a diagnosis stays until something changes: a file added, a retry"),
    (ANY, Signal.INSTALLED): _t(a.installed, S.CONFIGURED, S.DONE, S.STUCK, why="the step's load runs; next step"),
    (ANY, Signal.REJECTED): _t(a.rejected, S.CONFIGURED, S.STUCK,
                               why="next stone, else the target, else the file the tech must add"),
    (ANY, Signal.TERM): _t(a.term_offered, *SAME, why="the term file served ties its load to this boot"),
    (ANY, Signal.MANIFEST): _t(a.manifest, S.DOWNLOADING),
    (S.STUCK, Signal.MANIFEST): _t(a.manifest_while_stuck, S.STUCK, S.DOWNLOADING,
                                   why="a manifest it already refused, again (a term-file loop): still stuck"),
    (ANY, Signal.COMPONENT): _t(a.component, S.DOWNLOADING, S.REBOOTING),
    (ANY, Signal.LOADER): _t(a.loader, S.REBOOTING),
    (ANY, Signal.APP): _t(a.app, S.REBOOTING),
    (ANY, Signal.OLD_APP): _t(a.old_app, S.STUCK),
    (ANY, Signal.SIGNED_CONFIG): _t(a.signed_config, *SAME),
    (ANY, Signal.MISSING): _t(a.missing, S.STUCK),
    (ANY, Signal.REPORTED): _t(a.reported, *SAME),
    (S.DOWNLOADING, Signal.REPORTED): _t(a.keep, S.DOWNLOADING, why="mid-install the old load's page is stale"),
    (S.REBOOTING, Signal.REPORTED): _t(a.keep, S.REBOOTING),
    (S.CONFIGURED, Signal.SETTLED): _t(a.settled, S.DONE, S.WAITING),
    (S.DOWNLOADING, Signal.STALLED): _t(a.stalled, S.STUCK, S.CONFIGURED, S.REBOOTING,
                                        why="a manifest with no file after it is a rejection (Auth Fail)"),
    (S.REBOOTING, Signal.NO_RETURN): _t(a.no_return, S.STUCK),
    (ANY, Signal.TRUST_TIMEOUT): _t(a.trust_stuck, S.STUCK),
    (ANY, Signal.RETRY): _t(a.retry, S.SEEN),
}


def transition(state: S, signal: Signal) -> Transition | None:
    """The transition for a state and signal: the state's own row, else the ANY row, else None (ignored)."""
    return TABLE.get((state, signal)) or TABLE.get((ANY, signal))


def diagram() -> str:
    """docs/tracker.md: the table as Markdown and a Mermaid state diagram."""
    lines = ["# Recovery tracker: states and transitions", "",
             "Generated from `appliance/recovery/state.py` (`python -m appliance.recovery.state > docs/tracker.md`).",
             "A fact becomes a signal against the phone's boot record (`signals.py`); this table says what each",
             "signal does in each state (the action is a function in `actions.py`).", "",
             "| state | signal | action | may end in | why |", "|---|---|---|---|---|"]
    for (state, signal), t in TABLE.items():
        where = state.value if isinstance(state, S) else "any"
        ends = ", ".join(s.value for s in t.targets) if t.targets != SAME else "(any)"
        lines.append(f"| {where} | {signal.value} | {t.action.__name__} | {ends} | {t.why} |")
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
