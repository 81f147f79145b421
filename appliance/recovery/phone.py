"""One phone as the core knows it: what it runs, its plan, where it is, and what it did since the last conclusion.

Pure data: the core (tracker.py) changes it, memory.py saves and restores it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from appliance.firmware.versions import protocol

from .diagnosis import Code, Note
from .facts import PhoneState as S


@dataclass
class Boot:
    """What the phone did since the station last drew a conclusion about it."""
    offered: str | None = None       # what its last config or term file named
    term: str | None = None          # "term65.default.loads" when the offer came as a term file
    manifest: str | None = None      # key of the manifest (or term file) it took
    manifest_at: float | None = None
    files: set[str] = field(default_factory=set)   # components of that manifest it took
    loader: bool = False             # 7940/60 .sbn
    app: bool = False                # 7940/60 .sb2
    config_at: float | None = None   # last config asked
    took_config: bool = False
    signed_at: float | None = None   # asked for SEP<MAC>.cnf.xml.sgn
    progress_at: float = 0.0         # last firmware byte

    @property
    def took_firmware(self) -> bool:
        return bool(self.files) or self.loader or self.app


@dataclass
class Phone:
    mac: str
    model: str = ""
    ip: str = ""
    current: str | None = None       # the load ID it runs, when known
    how: str | None = None           # how `current` was learned
    before: str | None = None        # the load it ran when the station first learned one (not one it installed)
    protocol: str | None = None      # from evidence when `current` is unknown (a SIPDefault.cnf request)
    plan: list[str] = field(default_factory=list)
    step: int = 0
    state: S = S.SEEN
    note: Note = Note(Code.SEEN)
    stuck_on: str = ""               # "missing" when adding a file would move it on by itself
    rejected: set[str] = field(default_factory=set)
    installed_app: str | None = None  # a 7940/60 load counted as installed after its .sb2
    term_served: str | None = None   # the load whose term file it last got (served again while nothing else fits)
    reported: str | None = None      # a page/CDP string that maps to no load: shown, never used
    vid: str | None = None           # hardware version from its page's UDI ("V20"): its hardware floor
    hardware_revision: str | None = None   # its page's hardwareRevision ("1.0"): shown; floors are stated in VIDs
    converted_from: str | None = None   # "enterprise" or "mpp": the firmware it ran when its conversion began
    boot: Boot = field(default_factory=Boot)
    last: float = 0.0
    timeline: list[tuple[float, str, Note]] = field(default_factory=list)   # (ts, state, note)

    @property
    def target(self) -> str | None:
        return self.plan[-1] if self.plan else self.current

    @property
    def step_load(self) -> str | None:
        """The load this phone's config names now."""
        return self.plan[min(self.step, len(self.plan) - 1)] if self.plan else self.current

    @property
    def protocol_hint(self) -> str | None:
        return protocol(self.current) or self.protocol
