"""The MPP phone model on real sockets, on loopback: a test-local HTTP server (logging each path and its
User-Agent) and a test-local TFTP server (serving files, "File not found" otherwise) hand it a profile,
a licence and hand-built 5th-generation firmware.

What only sockets show: the lease's option 66 names the server, the profile is asked over TFTP and then
HTTP, every HTTP request carries the User-Agent of the load the phone runs at that moment, the
Upgrade_Rule's tftp:// URL is followed over TFTP, and a 7841 converts Enterprise -> transition -> MPP.
"""
from __future__ import annotations

import time

from tests.loopback_station import Station
from tests.test_phonesim_families import cnf, load5
from tests.test_phonesim_mpp import MAC, MPP78, NEW88, OLD88, SEP, T88, TL78, profile
from tools.phonesim.mpp_phone import MppSimPhone

FAST = dict(retry_s=0.3, reboot_s=0.2, register_s=0.5)


def test_8851_profile_over_tftp_then_http_firmware_over_tftp_and_its_new_user_agent():
    files = {f"mpp/{k}": v for k, v in load5(NEW88, tags=T88, size=2500).items()}
    files["8851-3PCC.xml"] = profile(f"tftp://127.0.0.1/mpp/{NEW88}.loads")
    tftp_files = {k: v for k, v in files.items() if k.startswith("mpp/")}       # TFTP: firmware only
    with Station(files, tftp_files) as st:
        phone = MppSimPhone(MAC, "8851", OLD88, platform=3, lease_options={66: b"127.0.0.1"}, **st.ports, **FAST)
        out = phone.run(server="127.0.0.1", deadline=30, linger_s=0.5)
    assert out["load"] == NEW88 and out["installed"] == [NEW88] and out["end"] == "settled", out
    assert out["firmware"] == "mpp" and out["boots"] == 2
    assert st.tftp_log[0] == "/8851-3PCC.xml"                          # TFTP first, not there
    assert [n for n in st.tftp_log if n.startswith("/mpp/")] == [
        f"/mpp/{NEW88}.loads", *[f"/mpp/{k}388xx.12-0-1MPP0001-100.sbn" for k in ("sboot", "kern", "rootfs")]]
    profiles = [(p, ua) for p, ua in st.http_log if p == "/8851-3PCC.xml"]
    assert profiles[0] == ("/8851-3PCC.xml", "Cisco-CP-8851-3PCC/11.3.3 (001234ab45de)")
    assert profiles[-1] == ("/8851-3PCC.xml", "Cisco-CP-8851-3PCC/12.0.1 (001234ab45de)")
    assert all(ua and ua.startswith("Cisco-CP-8851-3PCC/") for _, ua in st.http_log)


def test_7841_converts_enterprise_transition_mpp_with_its_licence_over_http():
    files = dict(load5(TL78))
    files.update({f"mpp/{k}": v for k, v in load5(MPP78).items()})
    files[SEP] = cnf(TL78)
    files["7841-3PCC.xml"] = profile(f"http://127.0.0.1/mpp/{MPP78}.loads", "http://127.0.0.1/lic/$MAU.lic", "Classic")
    files[f"lic/{MAC}.lic"] = b"licence bytes from Cisco"
    with Station(files, tftp_files={}) as st:                          # TFTP answers "File not found"
        phone = MppSimPhone(MAC, "7841", "sip78xx.12-5-1SR1-4", vid="V04", enterprise_http_port=st.http.server_port,
                            **st.ports, **FAST)
        start = time.monotonic()
        out = phone.run(server="127.0.0.1", deadline=40, linger_s=0.5)
    assert out["installed"] == [TL78, MPP78] and out["firmware"] == "mpp" and out["end"] == "settled", out
    assert time.monotonic() - start < 40
    assert st.tftp_log.count("/7841-3PCC.xml") >= 1                   # each profile round: TFTP, then HTTP
    paths = [p for p, _ in st.http_log]
    assert paths.index(f"/{SEP}") < paths.index(f"/{TL78}.loads") < paths.index("/7841-3PCC.xml")
    assert paths.index(f"/lic/{MAC}.lic") < paths.index(f"/mpp/{MPP78}.loads")
    enterprise_uas = {ua for p, ua in st.http_log[:paths.index("/7841-3PCC.xml")]}
    assert enterprise_uas == {None}                                     # the Enterprise phone sends none
    lic_ua = dict(st.http_log)[f"/lic/{MAC}.lic"]
    assert lic_ua == "Cisco-CP-7841-3PCC/11.2.3 (001234ab45de)"        # the transition load names its version
    assert "licence bytes" not in str(out)


def test_the_cli_runs_an_mpp_phone_against_a_station(capsys):
    import json

    from tools.phonesim.__main__ import main
    files = {f"mpp/{k}": v for k, v in load5(NEW88, tags=T88, size=2500).items()}
    files["8851-3PCC.xml"] = profile(f"http://127.0.0.1/mpp/{NEW88}.loads")
    with Station(files, tftp_files={}) as st:
        code = main(["--server", "127.0.0.1", "--mpp", "--model", "CP-8851-3PCC", "--load", OLD88,
                     "--first-mac", "001234ab45dd", "--port", str(st.ports["tftp_port"]), "--http-port",
                     str(st.ports["http_port"]), "--lease-option", "66=127.0.0.1", "--user-agent-version",
                     "major.minor", "--deadline", "30", "--reboot-seconds", "0.2", "--retry-seconds", "0.3"])
    assert code == 0
    (out,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert out["load"] == NEW88 and out["end"] == "settled" and out["user_agent"] == "Cisco-CP-8851-3PCC/12.0 (001234ab45de)"
    assert ("/8851-3PCC.xml", "Cisco-CP-8851-3PCC/11.3 (001234ab45de)") in st.http_log
