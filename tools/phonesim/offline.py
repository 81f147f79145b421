"""Drive a PhoneMachine with no sockets: a serve function answers its downloads, time is simulated.

For tests and what-if runs: a station's behaviour can be written as a plain
function of the file asked for, so a scenario of hours runs in milliseconds.
Bounded by `max_steps` actions and `until` simulated seconds.
"""
from __future__ import annotations

from typing import Callable

from .events import AskLease, Fetch, Fetched, FetchFailed, Leased, NoLease, PowerOn, Sleep, TimerFired
from .machine import PhoneMachine

Serve = Callable[[str, str], "bytes | None"]     # (name as asked, via) -> content, None = not found


class Files:
    """A station's file root as phones see it: case-insensitive, one leading '/' stripped (§0 item 4);
    `http=False` answers nothing over HTTP, as a TFTP-only station."""

    def __init__(self, files: dict[str, bytes] | None = None, http: bool = True):
        self.files = {k.lower(): v for k, v in (files or {}).items()}
        self.http = http

    def __setitem__(self, name: str, data: bytes) -> None:
        self.files[name.lower()] = data

    def __call__(self, name: str, via: str) -> bytes | None:
        if via == "http" and not self.http:
            return None
        return self.files.get(name.removeprefix("/").lower())


def drive(machine: PhoneMachine, serve: Serve, *, ip: str = "10.0.0.10", tftp: str | None = "10.0.0.1",
          lease: Callable[[int], bool] | None = None, max_steps: int = 2000, until: float = 3600.0,
          step_s: float = 0.05, stop: Callable[[PhoneMachine], bool] | None = None,
          on_action: Callable[[float, object], None] | None = None, options: dict | None = None) -> PhoneMachine:
    """Run `machine` from power-on.  `lease(n)` says whether the n-th DHCP (1-based) gets an answer;
    `stop(machine)` ends the run early; `on_action(now, action)` sees every action; `options` are the
    lease's DHCP options (code -> bytes, read by MPP phones).  Any machine with `handle` runs (mpp.MppPhone)."""
    now = 0.0
    actions = list(machine.handle(PowerOn(now)))
    asks = 0
    for _ in range(max_steps):
        if not actions or now > until or (stop and stop(machine)):
            break
        action = actions.pop(0)
        if on_action:
            on_action(now, action)
        now += step_s
        if isinstance(action, AskLease):
            asks += 1
            ok = lease(asks) if lease else True
            event = Leased(now, ip, tftp, options) if ok else NoLease(now)
        elif isinstance(action, Fetch):
            data = serve(action.name, action.via)
            event = (Fetched(now, action.name, action.via, data) if data is not None
                     else FetchFailed(now, action.name, action.via, "File not found"))
        elif isinstance(action, Sleep):
            now = max(now, action.until)
            event = TimerFired(now)
        else:
            raise TypeError(f"unknown action {action!r}")
        actions += machine.handle(event)
    return machine
