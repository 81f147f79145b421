"""Cold burst: N brand-new clients DISCOVER at the same instant; how long until each sees its first OFFER?

Run inside a client namespace (the bench does this with `ip netns exec`).  Each
client has its own locally administered MAC and xid, sets the broadcast flag
(so any server can answer without ARP tricks) and retransmits every 4 s like a
real client (RFC 2131 §4.1) until it gets an OFFER or the deadline passes.
Prints one JSON document: per-client seconds to first OFFER (null = none).
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

RETRANSMIT_SECONDS = 4.0


def discover(mac: bytes, xid: int) -> bytes:
    return codec.serialize(codec.Message(xid=xid, flags=codec.BROADCAST_FLAG, chaddr=mac, options={
        codec.OPT_MSG_TYPE: bytes((codec.DISCOVER,)),
        codec.OPT_VENDOR_CLASS: b"Cisco Systems, Inc. IP Phone CP-7965G\x00",
        codec.OPT_PRL: bytes((1, 66, 6, 3, 15, 150, 35)),
    }))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--interface", default="lan0")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--server-port", type=int, default=67)
    args = ap.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, args.interface.encode())
    sock.bind(("0.0.0.0", args.server_port + 1))
    seed = os.urandom(2)
    clients = {}
    for i in range(args.count):
        mac = b"\x02" + seed + bytes((0xB0, i >> 8 & 0xFF, i & 0xFF))
        xid = int.from_bytes(os.urandom(4), "big")
        clients[xid] = {"mac": mac, "packet": discover(mac, xid), "sent": 0.0, "offer": None}
    start = time.monotonic()
    for client in clients.values():
        sock.sendto(client["packet"], ("255.255.255.255", args.server_port))
        client["sent"] = start
    deadline = start + args.timeout
    waiting = len(clients)
    while waiting and time.monotonic() < deadline:
        now = time.monotonic()
        for client in clients.values():
            if client["offer"] is None and now - client["sent"] >= RETRANSMIT_SECONDS:
                sock.sendto(client["packet"], ("255.255.255.255", args.server_port))
                client["sent"] = now
        ready, _, _ = select.select([sock], [], [], 0.05)
        if not ready:
            continue
        data = sock.recv(4096)
        try:
            msg = codec.parse(data)
        except codec.MalformedPacket:
            continue
        client = clients.get(msg.xid)
        if client and msg.msg_type == codec.OFFER and client["offer"] is None and msg.chaddr[:6] == client["mac"]:
            client["offer"] = time.monotonic() - start
            waiting -= 1
    times = [c["offer"] for c in clients.values()]
    print(json.dumps({"count": args.count, "answered": sum(t is not None for t in times), "times": times}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
