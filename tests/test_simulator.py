import os
import socket
import time

import pytest

from appliance.recovery.simulator import SimPhone, TftpRead

tftpy = pytest.importorskip("tftpy")


def test_codec_error_and_short_packet():
    t = TftpRead("x")
    assert t.receive(b"\0") is None
    t.receive(b"\0\5\0\1File not found\0")
    assert t.done and t.error == "File not found"


def _port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test_phone_boot_against_tftpy_server(tmp_path):
    (tmp_path / "SEP001122334455.cnf.xml").write_text("<device><loadInformation>SCCP45.9-4-2S</loadInformation></device>")
    (tmp_path / "SCCP45.9-4-2S.loads").write_text("apps45.9-4-2.sbn\ncnu45.9-4-2.sbn\n")
    (tmp_path / "apps45.9-4-2.sbn").write_bytes(os.urandom(100000))
    (tmp_path / "cnu45.9-4-2.sbn").write_bytes(b"x" * 1428)
    port = _port()
    import threading
    srv = tftpy.TftpServer(str(tmp_path))
    th = threading.Thread(target=srv.listen, args=("127.0.0.1", port), daemon=True)
    th.start()
    try:
        time.sleep(0.5)
        log = dict(SimPhone("00:11:22:33:44:55").boot("127.0.0.1", port))
        assert log["ITLFile.tlv"] is not None
        assert log["SEP001122334455.cnf.xml"] is None
        assert log["SCCP45.9-4-2S.loads"] is None
        assert log["apps45.9-4-2.sbn"] is None and log["cnu45.9-4-2.sbn"] is None
    finally:
        srv.stop(now=True)
        th.join(5)


def test_old_phone_rejects_load_after_fetching_loads(tmp_path):
    (tmp_path / "SEP001122334455.cnf.xml").write_text("<loadInformation>SCCP45.9-4-2S</loadInformation>")
    (tmp_path / "SCCP45.9-4-2S.loads").write_text("apps45.9-4-2.sbn\n")
    (tmp_path / "apps45.9-4-2.sbn").write_bytes(b"y" * 5000)
    port = _port()
    import threading
    srv = tftpy.TftpServer(str(tmp_path))
    th = threading.Thread(target=srv.listen, args=("127.0.0.1", port), daemon=True)
    th.start()
    try:
        time.sleep(0.5)
        log = SimPhone("00:11:22:33:44:55", current="SCCP45.8-3-2S").boot("127.0.0.1", port)
        names = [n for n, _ in log]
        assert "SCCP45.9-4-2S.loads" in names and "apps45.9-4-2.sbn" not in names
        assert ("rejected", "Auth Fail") in log
    finally:
        srv.stop(now=True)
        th.join(5)
