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
from .models import MODELS, by_name, normalize_model
from .names import Kind, Name, classify, lookup_name
from .versions import ENTERPRISE, MPP, firmware_type

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
    """A generated file whose content depends on which phone asks (configs, term files, MPP profiles, licences; not
    XMLDefault)."""
    n = lookup_name(name)
    if classify(n).kind in (Kind.PROFILE, Kind.LICENCE):
        return True
    return "/" not in n and bool(_SEP_XML.match(n) or _SEP_CNF.match(n) or _SIP_CNF.match(n) or _TERM.match(n)
                                 or n.upper() == "OS79XX.TXT" or n.lower() in ("sipdefault.cnf", "sepdefault.cnf"))


def mpp_default_key(model: str) -> str:
    """The key under which the core's defaults give a model's multiplatform load ("CP-8851" -> "CP-8851-3PCC")."""
    return f"{normalize_model(model)}-3PCC"


class Generated:
    def __init__(self, cfg, catalog, table: AnswerTable, licences=None):
        """
        Args:
            cfg: the station config ([network] address names the call manager and the profiles' server).
            catalog: the firmware catalog (term files are read from its packages).
            table: what each phone's config names, as the recovery core last pushed it.
            licences: the volume's conversion licences (licences.Licences); None: no licence is ever named.
        """
        self.cfg = cfg
        self.catalog = catalog
        self.table = table
        self.licences = licences
        self.address = str(cfg.network.address)
        self.http_port = int(getattr(cfg.tftp, "http_port", 6970))

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

    def render_named(self, name: str, client_ip: str | None = None, proto: str = "tftp"
                     ) -> tuple[bytes | None, str | None]:
        """(the generated file's bytes or None, the load it names or None); `proto` is how it was asked ("tftp",
        "http"): an MPP profile names its load over the same."""
        n = lookup_name(name)
        asked = classify(n)
        if asked.kind is Kind.PROFILE:
            return self.profile(asked, client_ip, proto)
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
        """(device type, model label, load) for every model the plan has a load for; each device type once.  Not the
        6800 (MPP only: no device type, never reads this file), and never a multiplatform or transition load, which
        an Enterprise phone the core knows nothing of must not be handed (conversion is per phone, opt-in)."""
        out: list[tuple[int, str, str]] = []
        seen: set[int] = set()
        for model in MODELS:
            load = self.table.default(model.name)
            if not load or model.mpp_only or firmware_type(load) not in (ENTERPRISE, None):
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

    # ---- multiplatform (3PCC) profiles ----------------------------------------------------------------
    def _url(self, proto: str, file: str) -> str:
        """`file` on this station over the scheme the phone used (phone-families.md §3.4: Upgrade_Rule syntax)."""
        if proto == "http":
            return f"http://{self.address}:{self.http_port}/{file}"
        return f"tftp://{self.address}/{file}"

    def profile(self, name: Name, client_ip: str | None, proto: str) -> tuple[bytes | None, str | None]:
        """(the flat profile for `<PSN>.xml` / `Cisco/CP-<PSN>/<mac>.cfg`, the load its Upgrade_Rule names).

        The phone holding the asking address's lease gets its own row: the load the core's plan names (an
        Enterprise one only when a licence for its MAC is present, i.e. a conversion back that the core chose) and,
        with its licence present, Trans_Auth_Rule/Type so it can take a load of the other kind (§3.1, §3.5).
        Anyone else -- no lease, another MAC's address, another model's name -- gets the model's default MPP load
        and never a licence: a profile is read-only, and a stranger's read is no fact about any phone."""
        row = self.table.at(client_ip)
        mine = (row is not None and (name.mac is None or name.mac == row.mac)
                and (not row.model or normalize_model(row.model) == name.model))
        licensed = bool(mine and row is not None and self.licences is not None and self.licences.present(row.mac))
        load = None
        if mine and row is not None and row.config:
            kind = firmware_type(row.config)
            if kind == MPP or (kind == ENTERPRISE and licensed):
                load = row.config
        if load is None:
            load = self.table.default(mpp_default_key(name.model or ""))
        if not load:
            return None, None
        lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<flat-profile>",
                 f'  <Upgrade_Rule ua="na">{escape(self._url(proto, load + ".loads"))}</Upgrade_Rule>']
        if licensed:
            # $MAU: the phone's MAC in upper case (Cisco's licence naming); Classic: the documented type to go with it.
            lines += [f'  <Trans_Auth_Rule ua="na">{escape(self._url(proto, "$MAU.lic"))}</Trans_Auth_Rule>',
                      '  <Trans_Auth_Type ua="na">Classic</Trans_Auth_Type>']
        lines += ["</flat-profile>", ""]
        return "\n".join(lines).encode("utf-8"), load

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
