"""A stand-in station on loopback for the phone models' socket tests (tests/test_phonesim_*_net.py): HTTP and
TFTP servers that serve a dict of files and log what was asked (HTTP: path and User-Agent; TFTP: name).

Test-local on purpose: the phone models are checked against this, never against the product's servers,
so a fault in the product cannot hide a fault in a model.
"""
from __future__ import annotations

import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOCK = 512


class Station:
    """HTTP and TFTP on loopback serving `files` (names without the leading '/', any case); TFTP serves
    `tftp_files` instead when given ({}: "File not found" for every request)."""

    def __init__(self, files: dict[str, bytes], tftp_files: dict[str, bytes] | None = None):
        self.files = {k.lower(): v for k, v in files.items()}
        self.tftp_files = self.files if tftp_files is None else {k.lower(): v for k, v in tftp_files.items()}
        self.http_log: list[tuple[str, str | None]] = []
        self.tftp_log: list[str] = []
        station = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                station.http_log.append((self.path, self.headers.get("User-Agent")))
                data = station.files.get(self.path.lstrip("/").lower())
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
                         threading.Thread(target=self._tftp, daemon=True)]

    @property
    def ports(self) -> dict[str, int]:
        return {"http_port": self.http.server_port, "tftp_port": self.udp.getsockname()[1]}

    def _tftp(self) -> None:
        while not self._stop.is_set():
            try:
                pkt, addr = self.udp.recvfrom(2048)
            except socket.timeout:
                continue
            if pkt[:2] != b"\x00\x01":
                continue
            name = pkt[2:].split(b"\0", 1)[0].decode("latin-1")
            self.tftp_log.append(name)
            data = self.tftp_files.get(name.lstrip("/").lower())
            if data is None:
                self.udp.sendto(struct.pack("!HH", 5, 1) + b"File not found\0", addr)
                continue
            threading.Thread(target=self._send, args=(data, addr), daemon=True).start()

    def _send(self, data: bytes, addr) -> None:
        """One transfer from its own port (TID), each block resent at most 5 times, 1 s apart."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(1.0)
            for n in range(len(data) // BLOCK + 1):
                pkt = struct.pack("!HH", 3, (n + 1) & 0xFFFF) + data[n * BLOCK:(n + 1) * BLOCK]
                for _ in range(5):
                    s.sendto(pkt, addr)
                    try:
                        ack = s.recv(16)
                    except socket.timeout:
                        continue
                    if ack[:4] == struct.pack("!HH", 4, (n + 1) & 0xFFFF):
                        break
                else:
                    return

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.http.shutdown()
        self.http.server_close()
        for t in self._threads:
            t.join(5)
        self.udp.close()
