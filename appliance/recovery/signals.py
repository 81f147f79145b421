"""Reading a fact against a phone's boot record: what it means for that phone (a Signal).

The same file means different things at different moments (reference
cisco-phones.md §0.0): a config asked after a manifest and its files means
the phone installed that load; after a manifest and nothing else, that it
refused it (Auth Fail does not reboot, item 5); a 7940/60 between its loader
and its application means nothing yet (item 9).  state.py says what each
signal does.  Pure: no I/O, no change to the phone.
"""
from __future__ import annotations

import enum

from appliance.firmware.names import Kind, Name

from .facts import FileAsked, FileMissing, FileSent
from .phone import Phone


class Signal(enum.Enum):
    LEASE = "lease"                      # DHCP ACK
    CONFIG = "config"                    # asked its config; nothing installed or refused since the last one
    INSTALLED = "installed"              # asked its config after taking a manifest and its files: runs that load now
    REJECTED = "rejected"                # took a manifest, no file of it, then asked its config or that manifest again
    TERM = "term"                        # a factory-reset phone asked termNN.default.loads (the offer is its load)
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


def _same_app(p: Phone, name: Name) -> bool:
    return bool(p.installed_app and name.load and name.load.lower() == p.installed_app.lower())


def read(p: Phone, name: Name, fact: FileAsked | FileSent | FileMissing) -> list[Signal]:
    """The signals a file fact gives for this phone, in order (most facts give one or none)."""
    b, kind = p.boot, name.kind
    if kind == Kind.SIGNED_CONFIG:             # asked at all (the station answers "not found")
        return [Signal.SIGNED_CONFIG] if isinstance(fact, (FileAsked, FileMissing)) else []
    if isinstance(fact, FileMissing):
        return [Signal.MISSING] if kind in (Kind.MANIFEST, Kind.TERM, Kind.COMPONENT, Kind.LOADER_7940,
                                            Kind.APP_7940) else []
    if kind in (Kind.CONFIG, Kind.PROFILE):      # a 3PCC profile is a multiplatform phone's config (§3.4)
        if not isinstance(fact, FileAsked):
            return []
        if b.manifest and b.took_firmware and (b.app or not (b.loader and not b.app)):
            return [Signal.INSTALLED]
        if b.manifest and not b.took_firmware:
            return [Signal.REJECTED]
        if b.loader and not b.app:
            return []       # a 7940/60 between its loader and its application: nothing to conclude yet
        return [Signal.CONFIG]
    if kind == Kind.TERM and isinstance(fact, FileAsked):
        again = bool(b.term and b.manifest == name.key and not b.took_firmware)
        return [Signal.REJECTED, Signal.TERM] if again else [Signal.TERM]     # the same term file, nothing taken
    if not isinstance(fact, FileSent) or fact.result != "complete":
        return []
    if kind in (Kind.MANIFEST, Kind.TERM):
        if b.manifest == name.key and not b.took_firmware and b.manifest_at is not None:
            return [Signal.REJECTED]                                # the same manifest again, nothing taken
        if kind == Kind.MANIFEST and _same_app(p, name):
            return [Signal.OLD_APP]
        return [Signal.MANIFEST]
    if kind == Kind.COMPONENT:
        return [Signal.COMPONENT] if b.manifest else []
    if kind == Kind.LOADER_7940:
        return [Signal.OLD_APP] if _same_app(p, name) else [Signal.LOADER]
    if kind == Kind.APP_7940:
        return [Signal.OLD_APP] if _same_app(p, name) else [Signal.APP]   # the same .sb2 again: its old app booted
    return []
