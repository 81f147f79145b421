"""phonesim: Cisco IP phones modelled outside the product, over real sockets.

An independent oracle for the recovery station (issue 17 item 5): its own truth
table of which load can verify which (truth.py, floors.py), its own readers of the
signed header (signed.py) and of the 7800/8800 container and manifest
(container5.py, manifest5.py), its own firmware writer (firmware.py), the real
DeviceInformationX format (deviceinfo.py), a pure per-phone state machine
(machine.py) and a thin socket loop (phone.py, net.py, web.py).  Nothing here
imports `appliance`; tests cross-check the product against it.

    from tools.phonesim import SimPhone, run_fleet
    SimPhone("001e7a650001", "CP-7965G", "SCCP45.8-3-2S", web=False).run("lan0")
    MppSimPhone("001234ab45de", "8851", "sip88xx.11-3-3MPP0001-377").run("lan0")     # MPP (mpp.py)
"""
from .mpp_phone import MppSimPhone
from .phone import SimPhone, run_fleet, shipped_load

__all__ = ["MppSimPhone", "SimPhone", "run_fleet", "shipped_load"]
