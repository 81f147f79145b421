"""The phone's `DeviceInformationX` page, in the format real phones serve (cisco-phones.md §0.0 item 3, §7.1).

On 79x1/2/5 `appLoadID` is the application jar file (jar45sccp.9-4-2SR4-3.sbn),
`bootLoadID` a boot image and `versionID` the load ID in asterisks
(*SCCP45.9-4-2SR4-3S*); on 7940/60 `appLoadID` is the load ID (P00308010200) and
`versionID` a version (8.1(2.0)).  A station that takes appLoadID for a load ID
is wrong on 79x1/2/5, which is exactly what this page lets a test catch.

69xx, 894x, 7800, 8800: `appLoadID` and `versionID` are the load ID (an 8841 shows
sip88xx.12-5-1SR3-74 in both, §7.1; for 69xx/894x that is UNCONFIRMED), and the page
carries `<udi>`, five lines: device type "phone", description, product ID, version
ID (the VID, e.g. V04), serial (phone-families.md §1.5: the Cisco guide's UDI
fields; collinmoerman's discover.py reads it with `.*(CP-.+).(V\\d+).(.+).`, the
readiness tool takes line [3] as the VID).  `hardwareRevision` is a different field
from the VID (§1.5 mapping note); its value is a setting of the phone.
"""
from __future__ import annotations

from xml.sax.saxutils import escape

from .loadid import LoadId, jar_name, version_text
from .models import P79XX, TNP, Model

# Boot images: the reference gives tnp62.8-3-1-21a.bin for a 7962 and PC03A300 for a 7940 (§0.0 item 3,
# §7.1); other models' boot images follow the same shape (UNCONFIRMED), and they do not change with the app.
TNP_BOOT = "tnp{nn}.8-3-1-21a.bin"
P79XX_BOOT = "PC03A300"


def udi(model: Model, mac: str, vid: str) -> str:
    """The UDI text: type, description, PID, VID, serial, one per line."""
    return f"phone\nCisco IP Phone {model.name}\n{model.number}\n{vid}\nFCH{mac[-8:]}\n"


def fields(model: Model, mac: str, running: LoadId, components: tuple[str, ...], *, vid: str | None = None,
           hardware_revision: str = "1.0") -> dict[str, str]:
    """The page's fields, in page order.  `vid` defaults to V01 where the page carries a UDI."""
    if model.family not in (TNP, P79XX):
        boot = next((c for c in components if c.lower().startswith(("sboot", "boot"))), "")
        return {"MACAddress": mac, "HostName": f"SEP{mac}", "phoneDN": "", "appLoadID": running.text,
                "bootLoadID": boot, "versionID": running.text, "DSPLoadID": "",
                "hardwareRevision": hardware_revision, "serialNumber": f"FCH{mac[-8:]}",
                "modelNumber": model.number, "udi": udi(model, mac, vid or "V01")}
    if model.family == TNP:
        jar = next((c for c in components if c.lower().startswith("jar")), None) or jar_name(running)
        dsp = next((c for c in components if c.lower().startswith("dsp")), "")
        app, boot, version = jar, TNP_BOOT.format(nn=model.name[2:4]), f"*{running.text}*"
        number = model.number
    else:
        app, boot, version, dsp = running.text, P79XX_BOOT, version_text(running), ""
        number = model.number.removesuffix("G")            # "CP-7940" (§7.1)
    return {"MACAddress": mac, "HostName": f"SEP{mac}", "phoneDN": "", "appLoadID": app, "bootLoadID": boot,
            "versionID": version, "DSPLoadID": dsp, "hardwareRevision": "1.0",
            "serialNumber": f"FCH{mac[-8:]}", "modelNumber": number}


def render(model: Model, mac: str, running: LoadId, components: tuple[str, ...], *, vid: str | None = None,
           hardware_revision: str = "1.0") -> str:
    page = fields(model, mac, running, components, vid=vid, hardware_revision=hardware_revision)
    body = "".join(f"<{k}>{escape(v)}</{k}>\n" for k, v in page.items())
    return f'<?xml version="1.0" encoding="utf-8"?>\n<DeviceInformation>\n{body}</DeviceInformation>\n'
