"""Best-effort read of a phone's own DeviceInformationX page (reference §7).

Phones with web access report appLoadID / versionID / modelNumber; most will
not answer at all, so each poll is a few short tries, never blocking the
tracker.  A phone asks for its config a second or two after its lease, and the
answer only helps if it lands first: so the first tries come quickly, and a
result is handed to `deliver` from the poll thread itself.
One thread reads every page at once over non-blocking sockets (a selector), and
each try has a deadline for the whole page -- connect, request, headers, body --
not per read: a phone whose page drips a byte at a time, or never answers, holds
one socket until its deadline and delays no other phone's read (a pool of
blocking reads once let four such phones keep the one with a page waiting past
its config).  A page not read by its deadline is simply unknown.  The bytes read
are parsed by http.client's response reader, which the file service already has.

Sockets are capped (MAX_OPEN), phones waiting for one are not (up to MAX_PENDING,
a bench's worth): a phone's first try, the one that can still land before its
config request, goes before every later try, and when every socket is taken it
cuts a later try short (that phone is tried again after its pause).  Once, 64
phones whose pages never finished, renewing their leases, filled the poller,
and a genuine phone's poll was dropped whole.
"""
from __future__ import annotations

import errno
import heapq
import io
import itertools
import logging
import queue
import re
import selectors
import socket
import threading
import time
from http.client import HTTPException, HTTPResponse
from typing import Callable

# (deadline for the whole page, pause after) per try: quick while the phone's config request is still ahead,
# then backing off
SCHEDULE = ((0.5, 0.2), (0.5, 0.3), (0.5, 0.5), (1.0, 1.0), (1.5, 2.0), (1.5, 4.0))
MAX_OPEN = 64             # pages being read at once (a socket each)
MAX_PENDING = 4096        # phones being polled, reading or waiting (a few hundred on a bench, and their re-leases)
MAX_HEAD = 16384          # bytes of status line and headers
log = logging.getLogger(__name__)
MAX_BODY = 65536          # a real page is 1-2 KiB; a larger one is not a phone's page and is dropped whole
MAX_VALUE = 128           # longer than any field a phone fills in; a longer value is dropped, never cut short
MAX_DEPTH = 16            # the page is flat (DeviceInformation > field); anything deeper is not a phone's page
# udi and hardwareRevision: the phone's hardware (its VID, on the UDI's fourth line; identify.hardware reads both)
FIELDS = ("apploadid", "bootloadid", "versionid", "modelnumber", "hardwarerevision", "udi")
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
        {"apploadid", "bootloadid", "versionid", "modelnumber", "hardwarerevision", "udi"} -> text, for the
        fields present with plain text (line breaks in a value, as in the UDI, become spaces);
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


class _Page:
    """One try at one phone's page: a non-blocking GET read until the phone closes, the body is complete, it
    grows past what a page can be, or the deadline passes."""

    def __init__(self, mac: str, ip: str, port: int, n: int, deadline: float):
        self.mac, self.ip, self.n, self.deadline = mac, ip, n, deadline
        self.buf = bytearray()
        self.out = (f"GET /DeviceInformationX HTTP/1.0\r\nHost: {ip}\r\nConnection: close\r\n\r\n").encode()
        self.done = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        code = self.sock.connect_ex((ip, port))
        if code not in (0, errno.EINPROGRESS):
            self.done = True

    def events(self) -> int:
        return selectors.EVENT_WRITE if self.out else selectors.EVENT_READ

    def step(self) -> None:
        """The socket is ready: send what is left of the request, or read what arrived."""
        try:
            if self.out:
                if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self.done = True
                    return
                self.out = self.out[self.sock.send(self.out):]
                return
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.done = True
            return
        if not data:
            self.done = True
            return
        self.buf += data
        if len(self.buf) > MAX_HEAD + MAX_BODY + 1 or self._complete():
            self.done = True

    def _complete(self) -> bool:
        """The headers said a length and the body has it (a phone that keeps the connection open)."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        m = re.search(rb"(?im)^content-length:[ \t]*(\d{1,9})[ \t]*\r?$", bytes(self.buf[:end + 2]))
        return bool(m) and len(self.buf) - end - 4 >= int(m.group(1))

    def close(self) -> None:
        self.sock.close()


class _Canned:
    """What HTTPResponse reads from: the bytes already received."""

    def __init__(self, data: bytes):
        self.data = data

    def makefile(self, *args, **kw) -> io.BytesIO:
        return io.BytesIO(self.data)


def page_fields(ip: str, raw: bytes) -> dict[str, str]:
    """The fields of a phone's whole HTTP answer (status line, headers, body) as received; {} unless a 200
    carrying a complete DeviceInformationX page that names a load.  A dropped page is logged."""
    r = HTTPResponse(_Canned(raw))      # type: ignore[arg-type]
    try:
        r.begin()
        if r.status != 200:
            return {}
        body = r.read(MAX_BODY + 1)
    except (HTTPException, ValueError, OSError):
        return {}                      # cut short by its deadline, or not HTTP
    info, why = read_page(body)
    if why:
        log.warning("DeviceInformationX from %s dropped: %s", ip, why)
    return info if info.get("apploadid") or info.get("versionid") else {}


class WebPoller:
    def __init__(self, port: int = 80, deliver: Callable[[str, dict[str, str]], None] | None = None):
        """`deliver(mac, fields)` runs in the poll thread; without it results wait for `drain`."""
        self.results: queue.Queue[tuple[str, dict[str, str]]] = queue.Queue()
        self.deliver = deliver or (lambda mac, info: self.results.put((mac, info)))
        self.pending: set[str] = set()
        self.port = port
        self._due: list[tuple[float, int, str, str, int]] = []     # (when, seq, mac, ip, try): later tries
        self._first: list[tuple[float, int, str, str, int]] = []   # the same for first tries, which go first
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._closed = False
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pages: set[_Page] = set()
        self._thread = threading.Thread(target=self._run, name="devinfo", daemon=True)
        self._thread.start()

    def poll(self, mac: str, ip: str) -> bool:
        """Queue one poll; dropped (False) when the phone is already being polled or too many are."""
        with self._lock:
            if not ip or self._closed or mac in self.pending or len(self.pending) >= MAX_PENDING:
                return False
            self.pending.add(mac)
            heapq.heappush(self._first, (time.monotonic(), next(self._seq), mac, ip, 0))
        self._wake()
        return True

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass            # already awake (buffer full) or closed

    def _run(self) -> None:
        try:
            while not self._closed:
                self._start_due()
                now = time.monotonic()
                with self._lock:
                    waiting = [q[0][0] for q in (self._first, self._due) if q] if len(self._pages) < MAX_OPEN else []
                    nearest = min([p.deadline for p in self._pages] + waiting, default=now + 60.0)
                for key, _ in self._selector.select(max(0.0, nearest - now)):
                    if key.data is None:
                        try:
                            self._wake_r.recv(4096)
                        except OSError:
                            pass
                        continue
                    page: _Page = key.data
                    page.step()
                    if page.done:
                        self._finish(page)
                    else:
                        self._selector.modify(page.sock, page.events(), page)
                now = time.monotonic()
                for page in [p for p in self._pages if p.deadline <= now]:
                    self._finish(page)      # not read in time: unknown, like a page never served
        except Exception:       # a bug must not leave phones pending for ever without a word
            log.exception("DeviceInformationX poller stopped")
        finally:
            for page in list(self._pages):
                self._drop(page)

    def _start_due(self) -> None:
        """Open the tries that are due while sockets are free: first tries before later ones; a first try finding
        every socket taken cuts the later try that has read least (its page is tried again after its pause)."""
        now = time.monotonic()
        while True:
            with self._lock:
                if self._closed:
                    return
                first = bool(self._first) and self._first[0][0] <= now
                if not first and not (self._due and self._due[0][0] <= now):
                    return
                if len(self._pages) >= MAX_OPEN:
                    later = [p for p in self._pages if p.n > 0]
                    if not first or not later:
                        return
                    victim = min(later, key=lambda p: (len(p.buf), -p.deadline))
                else:
                    victim = None
                _, _, mac, ip, n = heapq.heappop(self._first if first else self._due)
            if victim is not None:
                self._finish(victim)
            try:
                page = _Page(mac, ip, self.port, n, now + SCHEDULE[n][0])
            except OSError:         # out of sockets: this try failed
                self._next(mac, ip, n, {})
                continue
            if page.done:
                page.close()
                self._next(mac, ip, n, {})
                continue
            self._pages.add(page)
            self._selector.register(page.sock, page.events(), page)

    def _drop(self, page: _Page) -> None:
        self._pages.discard(page)
        try:
            self._selector.unregister(page.sock)
        except (KeyError, ValueError):
            pass
        page.close()

    def _finish(self, page: _Page) -> None:
        self._drop(page)
        self._next(page.mac, page.ip, page.n, page_fields(page.ip, bytes(page.buf)) if page.buf else {})

    def _next(self, mac: str, ip: str, n: int, info: dict[str, str]) -> None:
        """A try ended: deliver what it read, else schedule the next try after its pause (or give up: unknown)."""
        with self._lock:
            if not info and n + 1 < len(SCHEDULE) and not self._closed:
                heapq.heappush(self._due, (time.monotonic() + SCHEDULE[n][1], next(self._seq), mac, ip, n + 1))
                return
            self.pending.discard(mac)
        if info:
            self.deliver(mac, info)

    def _get(self, ip: str, timeout: float) -> dict[str, str]:
        """One page read now, on this thread, with `timeout` for the whole page: the poller's own try, alone."""
        page = _Page("", ip, self.port, 0, time.monotonic() + timeout)
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(page.sock, page.events())
                while not page.done:
                    left = page.deadline - time.monotonic()
                    if left <= 0:
                        break
                    if sel.select(left):
                        page.step()
                        if not page.done:
                            sel.modify(page.sock, page.events())
        finally:
            page.close()
        return page_fields(ip, bytes(page.buf)) if page.buf else {}

    def drain(self) -> list[tuple[str, dict[str, str]]]:
        out = []
        while True:
            try:
                out.append(self.results.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._due.clear()
            self._first.clear()
        self._wake()
        self._thread.join(timeout=5)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
