"""Wait for a DHCP server to come up: DISCOVER every 20 ms until the first OFFER; print its wall-clock time.

Started before the server so the bench measures start-up as "process launched
-> first OFFER on the wire", which is what a tech powering the station on waits for.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from appliance.dhcp import codec  # noqa: E402
from bench.dhcp_burst import discover  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--interface", default="lan0")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, args.interface.encode())
    sock.bind(("0.0.0.0", 68))
    mac = b"\x02\xfe" + os.urandom(4)
    xid = int.from_bytes(os.urandom(4), "big")
    packet = discover(mac, xid)
    deadline = time.monotonic() + args.timeout
    print(json.dumps({"ready": time.time()}), flush=True)
    while time.monotonic() < deadline:
        sock.sendto(packet, ("255.255.255.255", 67))
        until = time.monotonic() + 0.02
        while (left := until - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            try:
                msg = codec.parse(sock.recv(4096))
            except codec.MalformedPacket:
                continue
            if msg.xid == xid and msg.msg_type == codec.OFFER:
                print(json.dumps({"offer": time.time()}), flush=True)
                return 0
    print(json.dumps({"offer": None}), flush=True)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
