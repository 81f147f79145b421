"""Configuration files the station generates per request (reference §2, §3): never written to the firmware volume.

SEP<MAC>.cnf.xml / XMLDefault.cnf.xml name the load a phone should run;
OS79XX.TXT, SEP<MAC>.cnf and SIPDefault.cnf / SIP<MAC>.cnf do the same for
7940/60 loaders; termNN.default.loads is answered with the term file of the
load the plan wants first, and never with another manifest: a file's signed
name is its identity (reference §0.0 item 2), so a package without the term
file means "file not found" and the catalog says which term file is missing.
Which load is the Decider's answer: the recovery tracker's in the file service
(a phone asking for its config is a fact it learns from before it answers);
`newest_complete_chooser` stands in without it.
"""
from __future__ import annotations

import logging
import re
from html import escape as _html_escape
from typing import Protocol

from .models import MODELS, by_name, model_from_vendor_class, normalize_model
from .names import Kind, classify, lookup_name

log = logging.getLogger("firmware")

SCCP_PORT = 2000


class Decider(Protocol):
    """Which load a generated file names."""

    def config(self, ip: str | None, name: str, mac: str | None, model: str | None) -> str | None:
        """A phone asks for its own config (`name`): the load it should take next."""

    def default(self, model: str) -> str | None:
        """The load XMLDefault.cnf.xml names for a model (no phone in particular)."""

    def term(self, ip: str | None, term: str, model: str) -> str | None:
        """A factory-reset phone asks for `term` (termNN.default.loads): the load whose term file to serve."""

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


class NewestComplete:
    """Stand-in Decider: the newest complete load for the model, on the protocol it runs if known."""

    def __init__(self, catalog):
        self.catalog = catalog

    def default(self, model: str) -> str | None:
        load = self.catalog.newest_complete(model, _only_protocol(self.catalog, model)) if model else None
        return load.id if load else None

    def config(self, ip, name, mac, model) -> str | None:
        return self.default(model or "")

    def term(self, ip, term, model) -> str | None:
        return self.default(model)


def _only_protocol(catalog, model: str) -> str | None:
    """The protocol when the library has loads of one only for the model; SCCP when it has both (plan.py says why)."""
    protos = {load.protocol for load in catalog.loads_for_model(model) if load.complete}
    return next(iter(protos)) if len(protos) == 1 else ("sccp" if "sccp" in protos else None)


def newest_complete_chooser(catalog) -> NewestComplete:
    return NewestComplete(catalog)


class Generated:
    def __init__(self, cfg, catalog, decider: Decider | None = None, store=None):
        self.cfg = cfg
        self.catalog = catalog
        self.decider = decider or NewestComplete(catalog)
        self._store = store
        self.address = str(cfg.network.address)

    # ---- who is asking ------------------------------------------------------------------------------
    def store(self):
        if self._store is None:
            try:
                from ..store import Store
                self._store = Store(self.cfg.db_path)
            except Exception as exc:  # without a store we still answer, just without per-phone knowledge
                log.warning("generated: no store: %s", exc)
                self._store = False
        return self._store or None

    def _phone(self, mac: str | None, client_ip: str | None) -> tuple[str | None, str | None]:
        """(mac, model) from the phones table or the DHCP lease (option 60)."""
        st = self.store()
        if st is None:
            return mac, None
        try:
            if mac is None and client_ip:
                lease = st.leases.at(client_ip)
                if lease:
                    mac = lease["mac"]
                else:
                    mac = st.phones.mac_at(client_ip)
            if mac is None:
                return None, None
            row = st.phones.get(mac)
            if row and row.get("model"):
                return mac, normalize_model(row["model"])
            lease = st.leases.of(mac)
            vc = (lease["vendor_class"] if lease else None) or (row.get("vendor_class") if row else None)
            return mac, model_from_vendor_class(vc) if vc else None
        except Exception as exc:
            log.warning("generated: phone lookup failed: %s", exc)
            return mac, None

    def _phone_7940(self, mac: str | None, client_ip: str | None) -> tuple[str | None, str]:
        """Only 7940/60 loaders ask for these files, whatever a stale lease says the address belongs to."""
        mac, model = self._phone(mac, client_ip)
        known = by_name(model) if model else None
        return mac, model if known is not None and known.is_7940 else _7940_DEFAULT

    def _ask(self, what: str, *args) -> str | None:
        try:
            return getattr(self.decider, what)(*args)
        except Exception as exc:  # a broken plan must not stop the phone from getting a config
            log.warning("generated: %s%r failed: %r", what, args, exc)
            return None

    def _config(self, name: str, client_ip: str | None, mac: str | None, model: str | None) -> str | None:
        return self._ask("config", client_ip, name, mac, model)

    # ---- rendering ----------------------------------------------------------------------------------
    def render(self, name: str, client_ip: str | None = None) -> bytes | None:
        """The generated file's bytes, or None if `name` is not a generated file (or there is nothing to say)."""
        n = lookup_name(name)
        if "/" in n:
            return None
        if m := _SEP_XML.match(n):
            mac = m.group(1).lower()
            mac, model = self._phone(mac, client_ip)
            return self.sep_xml(self._config(n, client_ip, mac, model))
        if n.lower() == "xmldefault.cnf.xml":
            return self.xml_default()
        if n.upper() == "OS79XX.TXT":
            load = self._config(n, client_ip, *self._phone_7940(None, client_ip))
            return self.os79xx(load) if load else None
        if m := (_SEP_CNF.match(n) or _SIP_CNF.match(n)):
            load = self._config(n, client_ip, *self._phone_7940(m.group(1).lower(), client_ip))
            return self.image_version_cnf(load) if load else None
        if n.lower() in ("sipdefault.cnf", "sepdefault.cnf"):
            load = self._config(n, client_ip, *self._phone_7940(None, client_ip))
            return self.image_version_cnf(load) if load else None
        if m := _TERM.match(n):
            return self.term_file(m.group(1).lower(), client_ip)
        return None

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
            load = self._ask("default", model.name)
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

    def term_file(self, term: str, client_ip: str | None) -> bytes | None:
        """The term file listing the load the plan wants first for this model; None if no package has one."""
        models = [m for m in MODELS if m.term and m.term.lower() == f"{term}.default.loads"]
        if not models:
            return None
        mac, model = self._phone(None, client_ip)
        model = model if model and by_name(model) in models else models[0].name
        load = self._ask("term", client_ip, f"{term}.default.loads", model)
        if not load:
            return None
        path = self.catalog.term_file_for(load, f"{term}.default.loads")
        if path is None:
            log.warning("generated: %s.default.loads asked for, but no package has one listing %s", term, load)
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None


def _one_line(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f\"]", "", str(text)).strip()
