"""Best-effort read of a phone's own DeviceInformationX page (reference §7).

Phones with web access report appLoadID / versionID / modelNumber; most will
not answer at all, so each poll is a few short tries, never blocking the
tracker.  A phone asks for its config a second or two after its lease, and the
answer only helps if it lands first: so the first tries come quickly, a result
is handed to `deliver` from the poll thread itself, and a try waiting out its
pause sits in a timer heap, not in a pool thread (four silent phones sleeping
in the pool once kept the one phone with a page waiting past its config).
http.client rather than urllib.request: the file service already has it (for
HTTP :6970), while urllib.request would add ~2 MiB of modules it never uses.
"""
from __future__ import annotations

import heapq
import itertools
import queue
import re
import threading
import time
from http.client import HTTPConnection, HTTPException
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

# (timeout, pause after) per try: quick while the phone's config request is still ahead, then backing off
SCHEDULE = ((0.5, 0.2), (0.5, 0.3), (0.5, 0.5), (1.0, 1.0), (1.5, 2.0), (1.5, 4.0))
MAX_PENDING = 64
_FIELD = re.compile(r"<(appLoadID|versionID|modelNumber)>\s*([^<]{1,80}?)\s*</\1>", re.I)


def parse(body: bytes) -> dict[str, str]:
    """Fields of a DeviceInformationX document; malformed or foreign pages give {}."""
    text = body[:65536].decode("latin-1", "replace")
    return {m.group(1).lower(): m.group(2) for m in _FIELD.finditer(text)}


class WebPoller:
    def __init__(self, workers: int = 4, port: int = 80,
                 deliver: Callable[[str, dict[str, str]], None] | None = None):
        """`deliver(mac, fields)` runs in a poll thread; without it results wait for `drain`."""
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="devinfo")
        self.results: queue.Queue[tuple[str, dict[str, str]]] = queue.Queue()
        self.deliver = deliver or (lambda mac, info: self.results.put((mac, info)))
        self.pending: set[str] = set()
        self.port = port
        self._due: list[tuple[float, int, str, str, int]] = []     # (when, seq, mac, ip, try)
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self._timer = threading.Thread(target=self._dispatch, name="devinfo-timer", daemon=True)
        self._timer.start()

    def poll(self, mac: str, ip: str) -> bool:
        """Queue one poll; dropped (False) when the phone is already being polled or too many are."""
        with self._cv:
            if not ip or self._closed or mac in self.pending or len(self.pending) >= MAX_PENDING:
                return False
            self.pending.add(mac)
            self._at(time.monotonic(), mac, ip, 0)
        return True

    def _at(self, when: float, mac: str, ip: str, n: int) -> None:
        heapq.heappush(self._due, (when, next(self._seq), mac, ip, n))
        self._cv.notify()

    def _dispatch(self) -> None:
        with self._cv:
            while not self._closed:
                now = time.monotonic()
                if self._due and self._due[0][0] <= now:
                    _, _, mac, ip, n = heapq.heappop(self._due)
                    self.pool.submit(self._try, mac, ip, n)
                else:
                    self._cv.wait(self._due[0][0] - now if self._due else None)

    def _try(self, mac: str, ip: str, n: int) -> None:
        timeout, pause = SCHEDULE[n]
        info = self._get(ip, timeout)
        with self._cv:
            if not info and n + 1 < len(SCHEDULE) and not self._closed:
                self._at(time.monotonic() + pause, mac, ip, n + 1)
                return
            self.pending.discard(mac)
        if info:
            self.deliver(mac, info)

    def _get(self, ip: str, timeout: float) -> dict[str, str]:
        conn = HTTPConnection(ip, self.port, timeout=timeout)
        try:
            conn.request("GET", "/DeviceInformationX")
            r = conn.getresponse()
            info = parse(r.read(65536)) if r.status == 200 else {}
            return info if info.get("apploadid") or info.get("versionid") else {}
        except (OSError, ValueError, HTTPException):
            return {}
        finally:
            conn.close()

    def drain(self) -> list[tuple[str, dict[str, str]]]:
        out = []
        while True:
            try:
                out.append(self.results.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._due.clear()
            self._cv.notify()
        self.pool.shutdown(wait=False, cancel_futures=True)
