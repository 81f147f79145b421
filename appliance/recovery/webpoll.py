"""Best-effort read of a phone's own DeviceInformationX page (reference §7).

Phones with web access report appLoadID / versionID / modelNumber; most will
not answer at all, so each poll is a few short tries on a small bounded pool
and results come back through a queue the tracker drains: never blocking it.
http.client rather than urllib.request: the file service already has it (for
HTTP :6970), while urllib.request would add ~2 MiB of modules it never uses.
"""
from __future__ import annotations

import queue
import re
import time
from http.client import HTTPConnection, HTTPException
from concurrent.futures import ThreadPoolExecutor

TIMEOUT_S = 1.5
TRIES = 3
GAP_S = 2.0
MAX_PENDING = 64
_FIELD = re.compile(r"<(appLoadID|versionID|modelNumber)>\s*([^<]{1,80}?)\s*</\1>", re.I)


def parse(body: bytes) -> dict[str, str]:
    """Fields of a DeviceInformationX document; malformed or foreign pages give {}."""
    text = body[:65536].decode("latin-1", "replace")
    return {m.group(1).lower(): m.group(2) for m in _FIELD.finditer(text)}


class WebPoller:
    def __init__(self, workers: int = 4, port: int = 80):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="devinfo")
        self.results: queue.Queue[tuple[str, dict[str, str]]] = queue.Queue()
        self.pending: set[str] = set()
        self.port = port

    def poll(self, mac: str, ip: str) -> bool:
        """Queue one poll; dropped (False) when the phone is already being polled or the pool is saturated."""
        if not ip or mac in self.pending or len(self.pending) >= MAX_PENDING:
            return False
        self.pending.add(mac)
        self.pool.submit(self._run, mac, ip)
        return True

    def _run(self, mac: str, ip: str) -> None:
        try:
            for i in range(TRIES):
                conn = HTTPConnection(ip, self.port, timeout=TIMEOUT_S)
                try:
                    conn.request("GET", "/DeviceInformationX")
                    r = conn.getresponse()
                    info = parse(r.read(65536)) if r.status == 200 else {}
                    if info.get("apploadid") or info.get("versionid"):
                        self.results.put((mac, info))
                        return
                except (OSError, ValueError, HTTPException):
                    pass
                finally:
                    conn.close()
                time.sleep(GAP_S * (i + 1))
        finally:
            self.pending.discard(mac)

    def drain(self) -> list[tuple[str, dict[str, str]]]:
        out = []
        while True:
            try:
                out.append(self.results.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
