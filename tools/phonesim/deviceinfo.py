"""The phone's `DeviceInformationX` page, in the format real phones serve (cisco-phones.md §0.0 item 3, §7.1).

On 79x1/2/5 `appLoadID` is the application jar file (jar45sccp.9-4-2SR4-3.sbn),
`bootLoadID` a boot image and `versionID` the load ID in asterisks
(*SCCP45.9-4-2SR4-3S*); on 7940/60 `appLoadID` is the load ID (P00308010200) and
`versionID` a version (8.1(2.0)).  A station that takes appLoadID for a load ID
is wrong on 79x1/2/5, which is exactly what this page lets a test catch.
"""
from __future__ import annotations

from xml.sax.saxutils import escape

from .loadid import LoadId, jar_name, version_text
from .models import TNP, Model

# Boot images: the reference gives tnp62.8-3-1-21a.bin for a 7962 and PC03A300 for a 7940 (§0.0 item 3,
# §7.1); other models' boot images follow the same shape (UNCONFIRMED), and they do not change with the app.
TNP_BOOT = "tnp{nn}.8-3-1-21a.bin"
P79XX_BOOT = "PC03A300"


def fields(model: Model, mac: str, running: LoadId, components: tuple[str, ...]) -> dict[str, str]:
    """The page's fields, in page order."""
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


def render(model: Model, mac: str, running: LoadId, components: tuple[str, ...]) -> str:
    body = "".join(f"<{k}>{escape(v)}</{k}>\n" for k, v in fields(model, mac, running, components).items())
    return f'<?xml version="1.0" encoding="utf-8"?>\n<DeviceInformation>\n{body}</DeviceInformation>\n'
