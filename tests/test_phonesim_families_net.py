"""A 7841 of the phone model on real sockets, on loopback: HTTP :6970 serving hand-built 5th-generation
firmware, a TFTP port that answers every request with "File not found", the phone's own web page.

What only sockets show: the phone asks over HTTP first and falls back to TFTP for exactly the files HTTP
did not have, and once its config turns web access on its page carries the VID in <udi>.
"""
from __future__ import annotations

import re
import threading
import time
from urllib.request import urlopen

from tests.loopback_station import Station
from tests.test_phonesim_families import SEP, cnf, load5
from tools.phonesim import SimPhone

MAC = SEP[3:15]
START, TARGET = "sip78xx.14-0-1-0001-135", "sip78xx.14-4-1-0301-6"
FAST = dict(retry_s=0.3, reboot_s=0.2, register_s=0.5)


def test_7841_http_first_then_tftp_and_its_page_with_the_vid():
    files = load5(TARGET)
    files[SEP] = cnf(TARGET, web=0)
    pages: list[str] = []
    with Station(files, tftp_files={}) as st:             # TFTP: "File not found" for everything
        phone = SimPhone(MAC, "CP-7841", START, vid="V20", platform=2, web_port=0, **st.ports, **FAST)
        assert phone.device_information() is None               # web access off before any config (§1.5)

        def poll() -> None:
            end = time.monotonic() + 20
            while time.monotonic() < end and not pages:
                if phone.web.running and phone.machine.flash.running.text == TARGET:
                    try:
                        with urlopen(f"http://127.0.0.1:{phone.web.port}/DeviceInformationX", timeout=2) as r:
                            pages.append(r.read().decode())
                    except OSError:
                        pass
                time.sleep(0.05)

        poller = threading.Thread(target=poll)
        poller.start()
        out = phone.run(server="127.0.0.1", deadline=20, linger_s=1.5)
        poller.join(25)
    assert out["load"] == TARGET and out["end"] == "settled" and out["installed"] == [TARGET], out
    comps = [f["name"] for f in out["fetched"] if f["role"] == "component" and f["ok"]]
    assert comps == [f"{k}2.78xx.14-4-1-0301-6.sbn" for k in ("sboot", "kern", "rootfs")], comps
    http_asked = [path.lstrip("/") for path, _ in st.http_log]
    assert not [n for n in http_asked if n.lower().startswith(("sboot78xx", "kern78xx", "rootfs78xx"))]
    # TFTP was asked for exactly the names HTTP had not (the trust files), never for a file HTTP served.
    missing_over_http = {n.lower() for n in http_asked if n.lower() not in st.files}
    assert st.tftp_log and {n.lower() for n in st.tftp_log} == missing_over_http, (st.tftp_log, http_asked)
    assert pages, "the page never came up"
    udi = re.search(r"<udi>(.*)</udi>", pages[0], re.S).group(1)
    assert udi.split("\n")[2:4] == ["CP-7841", "V20"] and f"<versionID>{TARGET}</versionID>" in pages[0]
