"""Configuration files the station generates per request (reference §2, §3): never written to the firmware volume.

SEP<MAC>.cnf.xml / XMLDefault.cnf.xml name the load a phone should run;
OS79XX.TXT, SEP<MAC>.cnf and SIPDefault.cnf / SIP<MAC>.cnf do the same for
7940/60 loaders; termNN.default.loads is answered with the term file of the
load the plan wants first, and never with another manifest: a file's signed
name is its identity (reference §0.0 item 2), so a package without the term
file means "file not found" and the catalog says which term file is missing.
Which load is never decided here: it is read from the AnswerTable the
recovery core pushes (recovery/answers.py), the same for the phone and for
anyone else reading the file, and without a question or a wait.
"""
from __future__ import annotations

import logging
import re
from html import escape as _html_escape

from ..recovery.answers import AnswerTable
from .models import MODELS, by_name
from .names import Kind, classify, lookup_name

log = logging.getLogger("firmware")

SCCP_PORT = 2000

_SEP_XML = re.compile(r"^SEP([0-9A-F]{12})\.cnf\.xml$", re.I)
_SEP_CNF = re.compile(r"^SEP([0-9A-F]{12})\.cnf$", re.I)
_SIP_CNF = re.compile(r"^SIP([0-9A-F]{12})\.cnf$", re.I)
_TERM = re.compile(r"^(term\d\d)\.default\.loads$", re.I)
_7940_DEFAULT = "CP-7940G"   # 7940 and 7960 run the same loads; either picks them


def escape(text: str) -> str:
    """XML text and attribute escaping (&, <, >, \", ').  Not xml.sax.saxutils: it imports
    urllib.request, ~2 MiB in every file-service process for two functions."""
    return _html_escape(text, quote=True)


def refused(name: str) -> bool:
    """ITL/CTL trust files and signed configs: answer "file not found" at once (reference §0 item 5, §6)."""
    return classify(name).kind in (Kind.TRUST_LIST, Kind.SIGNED_CONFIG)


def per_phone(name: str) -> bool:
    """A generated file whose content depends on which phone asks (configs and term files, not XMLDefault)."""
    n = lookup_name(name)
    return "/" not in n and bool(_SEP_XML.match(n) or _SEP_CNF.match(n) or _SIP_CNF.match(n) or _TERM.match(n)
                                 or n.upper() == "OS79XX.TXT" or n.lower() in ("sipdefault.cnf", "sepdefault.cnf"))


class Generated:
    def __init__(self, cfg, catalog, table: AnswerTable):
        """
        Args:
            cfg: the station config ([network] address names the call manager).
            catalog: the firmware catalog (term files are read from its packages).
            table: what each phone's config names, as the recovery core last pushed it.
        """
        self.cfg = cfg
        self.catalog = catalog
        self.table = table
        self.address = str(cfg.network.address)

    def knows(self, name: str, client_ip: str | None) -> bool:
        """Whether the table can answer `name` for this address now: False only for a per-phone file asked
        from an address the table holds no phone at (a lease the core has not pushed yet, or no phone)."""
        return not per_phone(name) or self.table.at(client_ip) is not None

    def _7940(self, client_ip: str | None, mac: str | None, sip: bool) -> str | None:
        """Only 7940/60 loaders ask these files: a row of another model (a swapped phone, a stale address)
        gets the 7940/60 default, never its own model's load."""
        row = self.table.of_mac(mac) if mac else self.table.at(client_ip)
        known = by_name(row.model) if row is not None and row.model else None
        if row is not None and (known is None or known.is_7940):
            return row.sip if sip else row.config
        return self.table.default(_7940_DEFAULT)

    # ---- rendering ----------------------------------------------------------------------------------
    def render(self, name: str, client_ip: str | None = None) -> bytes | None:
        """The generated file's bytes, or None if `name` is not a generated file (or there is nothing to say)."""
        return self.render_named(name, client_ip)[0]

    def render_named(self, name: str, client_ip: str | None = None) -> tuple[bytes | None, str | None]:
        """(the generated file's bytes or None, the load it names or None)."""
        n = lookup_name(name)
        if "/" in n:
            return None, None
        if m := _SEP_XML.match(n):
            row = self.table.of_mac(m.group(1))
            load = row.config if row is not None else None
            return self.sep_xml(load), load
        if n.lower() == "xmldefault.cnf.xml":
            return self.xml_default(), None
        if n.upper() == "OS79XX.TXT":
            load = self._7940(client_ip, None, sip=False)
            return (self.os79xx(load), load) if load else (None, None)
        if m := (_SEP_CNF.match(n) or _SIP_CNF.match(n)):
            load = self._7940(client_ip, m.group(1), sip=n.upper().startswith("SIP"))
            return (self.image_version_cnf(load), load) if load else (None, None)
        if n.lower() in ("sipdefault.cnf", "sepdefault.cnf"):
            load = self._7940(client_ip, None, sip=n.lower().startswith("sip"))
            return (self.image_version_cnf(load), load) if load else (None, None)
        if m := _TERM.match(n):
            return self.term_file(m.group(1).lower(), client_ip)
        return None, None

    def _call_manager_group(self, indent: str) -> str:
        i = indent
        return (f"{i}<callManagerGroup>\n{i}  <members>\n{i}    <member priority=\"0\">\n{i}      <callManager>\n"
                f"{i}        <ports>\n{i}          <ethernetPhonePort>{SCCP_PORT}</ethernetPhonePort>\n{i}        </ports>\n"
                f"{i}        <processNodeName>{escape(self.address)}</processNodeName>\n"
                f"{i}      </callManager>\n{i}    </member>\n{i}  </members>\n{i}</callManagerGroup>\n")

    def sep_xml(self, load: str | None) -> bytes:
        """Per-device config (reference §3.3): the load, a callManagerGroup, web access and no peer sharing."""
        text = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<device>\n  <devicePool>\n"
                + self._call_manager_group("    ")
                + "  </devicePool>\n"
                + f"  <loadInformation>{escape(load or '')}</loadInformation>\n"
                + "  <vendorConfig>\n    <webAccess>0</webAccess>\n    <peerFirmwareSharing>0</peerFirmwareSharing>\n"
                + "  </vendorConfig>\n</device>\n")
        return text.encode("utf-8")

    def default_loads(self) -> list[tuple[int, str, str]]:
        """(device type, model label, load) for every model the plan has a load for; each device type once."""
        out: list[tuple[int, str, str]] = []
        seen: set[int] = set()
        for model in MODELS:
            load = self.table.default(model.name)
            if not load:
                continue
            for dt in model.device_types:
                if dt not in seen:
                    seen.add(dt)
                    out.append((dt, model.label, load))
        return out

    def xml_default(self) -> bytes:
        """XMLDefault.cnf.xml (reference §3.2): loadInformationNNN per model with a load in the catalog."""
        lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<Default>", self._call_manager_group("  ").rstrip("\n")]
        for dt, label, load in self.default_loads():
            lines.append(f'  <loadInformation{dt} model="{escape(label)}">{escape(load)}</loadInformation{dt}>')
        lines += ["</Default>", ""]
        return "\n".join(lines).encode("utf-8")

    @staticmethod
    def os79xx(load: str) -> bytes:
        """One line, the load, nothing after it (a trailing space breaks it, CSCdv19260)."""
        return _one_line(load).encode("ascii", "replace")

    @staticmethod
    def image_version_cnf(load: str) -> bytes:
        """SIPDefault.cnf / SIP<MAC>.cnf / SEP<MAC>.cnf for 7940/60: image_version names the load (reference §3.3)."""
        return f'image_version: "{_one_line(load)}"\n'.encode("ascii", "replace")

    def term_file(self, term: str, client_ip: str | None) -> tuple[bytes | None, str | None]:
        """(the term file listing the load the plan wants first for this phone, that load); (None, None) if no
        package has one."""
        models = [m for m in MODELS if m.term and m.term.lower() == f"{term}.default.loads"]
        if not models:
            return None, None
        row = self.table.at(client_ip)
        if row is not None and by_name(row.model) in models:
            load = row.term
        else:
            load = next((d for m in models if (d := self.table.default(m.name))), None)
        if not load:
            return None, None
        path = self.catalog.term_file_for(load, f"{term}.default.loads")
        if path is None:
            log.warning("generated: %s.default.loads asked for, but no package has one listing %s", term, load)
            return None, None
        try:
            return path.read_bytes(), load
        except OSError:
            return None, None


def _one_line(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f\"]", "", str(text)).strip()
