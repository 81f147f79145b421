"""The MPP phone's reader of a flat profile and of the rules in it (phone-families.md §3.1, §3.3, §3.4, §3.5).

Profiles as the reference quotes them:

    <device><flat-profile>                                          (friendly-waldo [F25])
      <Trans_Auth_Rule ua="na">http://SERVER_IP:6970/license/$MAU.lic</Trans_Auth_Rule>
      <Upgrade_Rule ua="na">http://SERVER_IP:6970/mpp/sip88xx.11-2-3MPP-398.loads</Upgrade_Rule>
    </flat-profile></device>

    <Upgrade_Rule ua="na">http://your-file-server.com/sip88xx.12-5-1SR1-4.loads</Upgrade_Rule>   (Cisco [F24])
    <Trans_Auth_Type ua="na">Classic</Trans_Auth_Type>

Readings the model takes, each UNCONFIRMED where said:
- The root is `<flat-profile>`, or `<device>` holding one `<flat-profile>` (friendly-waldo serves that; that a
  phone takes it is known only from that code).  `device_wrapper=False` refuses the wrapper.
- Cisco's guide prints `<Upgrade_Ruleua="na">` and `<Trans_Auth_Ruleua="na">` (no space before `ua`, §3.1).
  That is not well-formed XML and no source says a phone takes it: the model refuses the whole profile and
  names the typo.  What a real phone does with it is UNCONFIRMED.
- No DTD, no entity: the model refuses a profile that declares one (a bounded reader; what a phone does is
  UNCONFIRMED).  A parameter given twice is refused for the three the model reads.
- Rule syntax `<proto>://<server>[:port]/<path>/<file>.loads` [F24]; macros `$MA` (MAC, lower case), `$MAU`
  (upper case, `$MAU.lic` [F24]), `$PSN` (`8851-3PCC`), `$PN` (`CP-8851-3PCC`) (§3.4).  Any other macro, an option
  prefix (`[--key …]`, `( … )`), a query, a path with `..` or a control character is refused (Cisco's wider
  rule syntax is not in the reference).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

MAX_PROFILE = 512 * 1024
MAX_PARAMS = 4096
MAX_VALUE = 2048
MAX_RULE = 1024
READ = ("Upgrade_Rule", "Trans_Auth_Rule", "Trans_Auth_Type", "Profile_Rule")
SCHEMES = ("tftp", "http", "https")
DEFAULT_PORTS = {"tftp": 69, "http": 80, "https": 443}
_TYPO = re.compile(rb"<([A-Za-z_][A-Za-z0-9_]*?)ua\s*=", re.S)
_MACRO = re.compile(r"\$([A-Za-z]+)")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_PATH = re.compile(r"^/[A-Za-z0-9._~/$%+=-]*$")


class ProfileError(ValueError):
    """A profile the model refuses; the message says what and where."""


class RuleError(ValueError):
    """A rule (Upgrade_Rule, Trans_Auth_Rule) the model cannot follow."""


@dataclass(frozen=True)
class Profile:
    params: dict[str, str]

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value else None


def parse(data: bytes, *, device_wrapper: bool = True) -> Profile:
    """The parameters of a flat profile; ProfileError for anything the model refuses."""
    if len(data) > MAX_PROFILE:
        raise ProfileError(f"{len(data)} bytes: more than a profile holds here ({MAX_PROFILE})")
    head = data[:MAX_PROFILE]
    if m := _TYPO.search(head):
        name = m.group(1).decode("ascii", "replace")[:40]
        raise ProfileError(f"<{name}ua=...>: no space before 'ua' (the typo in Cisco's migration guide); not "
                           "well-formed XML, the profile is refused")
    if re.search(rb"<!(DOCTYPE|ENTITY)", head, re.I):
        raise ProfileError("the profile declares a DTD or an entity: refused")
    try:
        root = ET.fromstring(head)
    except ET.ParseError as exc:
        raise ProfileError(f"not well-formed XML ({exc})") from None
    if root.tag == "device":
        if not device_wrapper:
            raise ProfileError("<device> around <flat-profile>: this phone reads a bare <flat-profile> only")
        inner = [c for c in root if c.tag == "flat-profile"]
        if len(inner) != 1:
            raise ProfileError(f"<device> holds {len(inner)} <flat-profile>, not one")
        root = inner[0]
    if root.tag != "flat-profile":
        raise ProfileError(f"the root is <{str(root.tag)[:40]}>, not <flat-profile>")
    params: dict[str, str] = {}
    for n, child in enumerate(root):
        if n >= MAX_PARAMS:
            raise ProfileError(f"more than {MAX_PARAMS} parameters")
        tag = str(child.tag)
        value = (child.text or "").strip()
        if len(value) > MAX_VALUE:
            raise ProfileError(f"<{tag[:40]}> holds {len(value)} characters, more than {MAX_VALUE}")
        if tag in params and tag in READ:
            raise ProfileError(f"<{tag}> given twice")
        params.setdefault(tag, value)
    return Profile(params)


def macros(mac: str, pn: str, psn: str) -> dict[str, str]:
    """The macro values of one phone (mac: 12 hex digits, any case)."""
    return {"MA": mac.lower(), "MAU": mac.upper(), "PN": pn, "PSN": psn}


def expand(rule: str, values: dict[str, str]) -> str:
    """`$MAU.lic` -> `0012AB34CD56.lic`; RuleError for a macro the model does not know."""
    def one(m: re.Match) -> str:
        name = m.group(1)                 # the whole word: "$MAU" is MAU, "$MAUx" unknown, case as written
        if name in values:
            return values[name]
        raise RuleError(f"unknown macro ${name[:20]}")
    return _MACRO.sub(one, rule)


@dataclass(frozen=True)
class Url:
    scheme: str
    host: str
    port: int
    path: str                    # starts with '/'

    @property
    def file(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def directory(self) -> str:
        """The path up to and with the last '/': where the files a manifest lists are asked for (UNCONFIRMED)."""
        return self.path.rsplit("/", 1)[0] + "/"

    def sibling(self, name: str) -> Url:
        return Url(self.scheme, self.host, self.port, self.directory + name)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"


def parse_url(text: str) -> Url:
    """`<proto>://<server>[:port]/<path>`; RuleError naming what is wrong."""
    text = (text or "").strip()
    if not text:
        raise RuleError("the rule is empty")
    if len(text) > MAX_RULE:
        raise RuleError(f"the rule is {len(text)} characters long, more than {MAX_RULE}")
    if text[0] in "[(":
        raise RuleError("rule options ([--key …] or ( … )) are not modelled")
    if not text.isascii() or any(ord(c) < 0x21 or c == "\x7f" for c in text):
        raise RuleError("the rule holds a space, a control or a non-ASCII character")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise RuleError(f"{text[:60]!r} names no protocol (tftp://, http:// or https://)")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise RuleError(f"protocol {scheme[:10]!r} is not tftp, http or https")
    hostport, slash, path = rest.partition("/")
    if not slash:
        raise RuleError("the rule names no file")
    path = "/" + path
    host, colon, port_text = hostport.partition(":")
    if not _HOST.match(host):
        raise RuleError(f"server {host[:60]!r} is not a host name or address")
    port = DEFAULT_PORTS[scheme]
    if colon:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise RuleError(f"port {port_text[:10]!r} is not 1 to 65535")
        port = int(port_text)
    if "?" in path or "#" in path or not _PATH.match(path):
        raise RuleError(f"path {path[:60]!r} has characters the model does not follow")
    if any(part in ("..", ".") for part in path.split("/")) or path.endswith("/"):
        raise RuleError(f"path {path[:60]!r} is not a plain file path")
    return Url(scheme, host, port, path)


def rule_url(rule: str, values: dict[str, str], suffix: str | None = None) -> Url:
    """A rule's URL with its macros expanded; `suffix` (".loads") required on the file when given."""
    if rule.strip()[:1] in ("[", "("):
        raise RuleError("rule options ([--key …] or ( … )) are not modelled")
    url = parse_url(expand(rule, values))
    if suffix and not url.file.lower().endswith(suffix):
        raise RuleError(f"{url.file[:60]!r} is not a {suffix} file")
    return url
