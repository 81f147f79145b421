"""appliance/ports.py: who holds a port (from /proc text) and the line a service says about it."""
from __future__ import annotations

import errno
import os
import socket

from appliance import ports
from appliance.ports import Holder

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer\n"
UDP = HEADER + (
    "  0: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1111 2 0\n"     # *:67
    "  1: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2222 2 0\n"     # lo:53
    "  2: 35000A0A:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3333 2 0\n"     # 10.10.0.53:53
    "  3: garbage\n"
    "  4: 0100007F:zz35 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4444 2 0\n")
TCP6 = HEADER + (
    "  0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    "00:00000000 00000000     0        0 5555 1 0\n"                                                            # [::]:8080
    "  1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 "
    "00:00000000 00000000     0        0 6666 1 0\n")                                                           # established


def test_socket_inodes_by_port_address_and_state():
    assert ports.socket_inodes(UDP, 67, tcp=False) == [1111]
    assert ports.socket_inodes(UDP, 53, tcp=False) == [2222, 3333]
    assert ports.socket_inodes(UDP, 53, tcp=False, address="127.0.0.1") == [2222]     # not the other address's
    assert ports.socket_inodes(UDP, 53, tcp=False, address="0.0.0.0") == [2222, 3333]
    assert ports.socket_inodes(TCP6, 8080, tcp=True, address="10.0.0.1") == [5555]    # listening, wildcard
    assert ports.socket_inodes("", 67, tcp=False) == []


def test_unit_of_a_process_from_its_cgroup():
    assert ports.unit_of("0::/system.slice/dnsmasq.service\n") == "dnsmasq.service"
    assert ports.unit_of("12:pids:/system.slice/isc-dhcp-server.service\n0::/\n") == "isc-dhcp-server.service"
    assert ports.unit_of("0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n") is None
    assert ports.unit_of("0::/user.slice/user-0.slice/session-3.scope\n") is None
    assert ports.unit_of("") is None


def test_advice_names_the_holder_and_what_to_stop():
    unit = Holder(812, "dnsmasq", "/usr/sbin/dnsmasq -k", "dnsmasq.service")
    assert ports.advice("udp", 67, unit, "set [dhcp] enabled = false") == (
        "port 67/udp is held by dnsmasq (pid 812): stop it (systemctl stop dnsmasq) or set [dhcp] enabled = false")
    plain = Holder(4321, "in.tftpd", "/usr/sbin/in.tftpd -l", None)
    assert ports.advice("udp", 69, plain) == "port 69/udp is held by in.tftpd (pid 4321): stop it (kill 4321)"
    ours = Holder(99, "python", "/opt/venv/bin/python -m appliance serve dhcp", None)
    assert ports.advice("udp", 67, ours) == (
        "port 67/udp is held by python (pid 99) (an earlier station still running?): stop it (kill 99)")
    assert ports.advice("tcp", 8080, None, "set [api] port to a free one") == (
        "port 8080/tcp is in use by another program (see which: sudo ss -ltpn 'sport = :8080'): stop it "
        "or set [api] port to a free one")


def test_is_service_knows_the_station_s_own_service_by_its_command():
    api = Holder(7, "python", "/opt/venv/bin/python -m appliance --log-format text --log-level INFO serve api")
    assert ports.is_service(api, "api")
    assert not ports.is_service(api, "dns")                       # another of our services is not this one
    assert not ports.is_service(Holder(8, "gunicorn", "gunicorn serve api"), "api")     # not the station
    assert not ports.is_service(Holder(9, "python", "python -m appliance serve"), "api")
    assert not ports.is_service(None, "api")


def test_holder_found_through_proc_and_the_line_for_each_errno():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        found = ports.holder("udp", port, "127.0.0.1")
        assert found is not None and found.pid == os.getpid()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
            try:
                second.bind(("127.0.0.1", port))
            except OSError as exc:
                failure = ports.cannot_listen("udp", port, exc, "set [dns] enabled = false", "127.0.0.1")
        assert failure.permanent
        assert failure.line == (f"port {port}/udp is held by {found.name} (pid {os.getpid()}): stop it "
                                f"(kill {os.getpid()}) or set [dns] enabled = false")
    assert ports.holder("udp", port) is None        # closed: nobody holds it
    denied = ports.cannot_listen("udp", 67, OSError(errno.EACCES, "Permission denied"))
    assert denied.permanent and "sudo -E make run" in denied.line and "CAP_NET_BIND_SERVICE" in denied.line
    gone = ports.cannot_listen("udp", 67, OSError(errno.EADDRNOTAVAIL, "Cannot assign"), address="10.1.1.1")
    assert not gone.permanent and "10.1.1.1 is not on this host" in gone.line
