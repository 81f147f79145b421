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
import logging
import queue
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection, HTTPException
from typing import Callable

# (timeout, pause after) per try: quick while the phone's config request is still ahead, then backing off
SCHEDULE = ((0.5, 0.2), (0.5, 0.3), (0.5, 0.5), (1.0, 1.0), (1.5, 2.0), (1.5, 4.0))
MAX_PENDING = 64
log = logging.getLogger(__name__)
MAX_BODY = 65536          # a real page is 1-2 KiB; a larger one is not a phone's page and is dropped whole
MAX_VALUE = 128           # longer than any field a phone fills in; a longer value is dropped, never cut short
MAX_DEPTH = 16            # the page is flat (DeviceInformation > field); anything deeper is not a phone's page
FIELDS = ("apploadid", "bootloadid", "versionid", "modelnumber")
ROOT = "deviceinformation"
_TAG = re.compile(r"<(/?)([A-Za-z_][\w.\-]{0,63}(?::[A-Za-z_][\w.\-]{0,63})?)"
                  r"((?:\s+[^<>\s=/]{1,64}\s*=\s*(?:\"[^\"<]{0,512}\"|'[^'<]{0,512}'))*)\s*(/?)>")
_REF = re.compile(r"&(?:#(\d{1,7})|#x([0-9A-Fa-f]{1,6})|(lt|gt|amp|quot|apos));|&")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class _Dropped(Exception):
    """The page is not a DeviceInformationX document; the message says why (for the log)."""


def parse(body: bytes) -> dict[str, str]:
    """Fields of a DeviceInformationX document; malformed, foreign or hostile pages give {}.

    Args:
        body: the HTTP body as received (anything: huge, binary, not UTF-8, not XML).
    Returns:
        {"apploadid", "bootloadid", "versionid", "modelnumber"} -> text, for the fields present with plain text;
        {} for a page that is not one.  Never raises.
    """
    return read_page(body)[0]


def read_page(body: bytes) -> tuple[dict[str, str], str]:
    """`parse`, and why a page was dropped ("" when it was read), so the poller can log it.

    Rules (a phone's page is small, flat, well-formed XML under <DeviceInformation>): bodies over MAX_BODY, with NUL
    bytes (binary, UTF-16), with a DOCTYPE (entity declarations), with another root element, broken markup or
    nesting deeper than MAX_DEPTH are dropped whole.  A field counts only as a direct child of the root and only its
    first occurrence: one holding elements, an unknown entity or a value over MAX_VALUE is dropped, never a later
    copy taken instead.  Attributes are ignored, CDATA and the XML character references are text, control
    characters become spaces and the value is stripped; numbers are text like any other.
    """
    try:
        return _read(body), ""
    except _Dropped as exc:
        return {}, str(exc)
    except Exception as exc:      # a bug here must not kill the poll thread (its phone would never be polled again)
        log.exception("DeviceInformationX parser failed")
        return {}, f"unreadable ({type(exc).__name__})"


def _read(body: bytes) -> dict[str, str]:
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise _Dropped(f"not bytes ({type(body).__name__})")
    body = bytes(body)
    if len(body) > MAX_BODY:
        raise _Dropped(f"larger than {MAX_BODY} bytes")
    if b"\x00" in body:
        raise _Dropped("binary (NUL bytes)")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = body.decode("latin-1")        # old pages may be Latin-1; load IDs are ASCII either way
    out: dict[str, str] = {}
    seen: set[str] = set()
    stack: list[str] = []
    field: str | None = None                 # the field whose text is being read (a direct child of the root)
    parts: list[str] = []
    bad = False                              # that field holds something other than text
    done = False
    i, n = 0, len(text)
    while i < n and not done:
        j = text.find("<", i)
        chunk = text[i:] if j < 0 else text[i:j]
        if chunk:
            if not stack:
                if chunk.strip():
                    raise _Dropped("text outside the root element")
            elif field is not None:
                value = _text(chunk)
                bad = bad or value is None
                parts.append(value or "")
        if j < 0:
            break
        if text.startswith("<!--", j):
            end = text.find("-->", j + 4)
            if end < 0:
                raise _Dropped("unterminated comment")
            i = end + 3
            continue
        if text.startswith("<![CDATA[", j):
            end = text.find("]]>", j + 9)
            if end < 0 or not stack:
                raise _Dropped("CDATA outside the root or unterminated")
            if field is not None:
                parts.append(text[j + 9:end])
            i = end + 3
            continue
        if text.startswith("<?", j):
            end = text.find("?>", j + 2)
            if end < 0:
                raise _Dropped("unterminated processing instruction")
            i = end + 2
            continue
        if text.startswith("<!", j):
            raise _Dropped("a DOCTYPE or declaration (a phone's page has none)")
        m = _TAG.match(text, j)
        if not m:
            raise _Dropped(f"broken markup at character {j}")
        closing, name, empty = m.group(1) == "/", m.group(2).lower(), m.group(4) == "/"
        i = m.end()
        if closing:
            if empty or m.group(3) or not stack or stack[-1] != name:
                raise _Dropped(f"mismatched </{m.group(2)[:64]}>")
            stack.pop()
            if field is not None and len(stack) == 1:
                _keep(out, field, parts, bad)
                field, parts, bad = None, [], False
            if not stack:
                done = True
            continue
        if not stack and name != ROOT:
            raise _Dropped(f"root element <{m.group(2)[:64]}>, not <DeviceInformation>")
        if field is not None:
            bad = True                       # an element inside a field: not a text value
        elif len(stack) == 1 and name in FIELDS and name not in seen:
            seen.add(name)                   # the first occurrence decides, whatever it holds
            if empty:
                continue
            field, parts, bad = name, [], False
        if empty:
            if not stack:
                done = True
            continue
        if len(stack) >= MAX_DEPTH:
            raise _Dropped(f"nested deeper than {MAX_DEPTH}")
        stack.append(name)
    if not done:
        raise _Dropped("no complete <DeviceInformation> element")
    return out


def _text(chunk: str) -> str | None:
    """Character data with its references resolved; None for a stray '&', an unknown entity or a bad code point."""
    if "&" not in chunk:
        return chunk
    out, at = [], 0
    for m in _REF.finditer(chunk):
        out.append(chunk[at:m.start()])
        at = m.end()
        if m.group(3):
            out.append(_NAMED[m.group(3)])
            continue
        if m.group(1) is None and m.group(2) is None:
            return None
        code = int(m.group(1)) if m.group(1) is not None else int(m.group(2), 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        out.append(chr(code))
    out.append(chunk[at:])
    return "".join(out)


def _keep(out: dict[str, str], name: str, parts: list[str], bad: bool) -> None:
    """Store a field's value unless it held elements or bad references, or is empty or over MAX_VALUE."""
    if bad:
        return
    value = _CONTROL.sub(" ", "".join(parts)).strip()    # inside a value a control char stays a gap, never joins
    if value and len(value) <= MAX_VALUE:
        out[name] = value


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
            if r.status != 200:
                return {}
            info, why = read_page(r.read(MAX_BODY + 1))
            if why:
                log.warning("DeviceInformationX from %s dropped: %s", ip, why)
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
