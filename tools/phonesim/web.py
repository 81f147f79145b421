"""The phone's own web server: GET /DeviceInformationX while the machine says the page is up.

Started when the application runs with web access on and stopped while the phone
reboots, so a poller sees what it would on a real phone: a page, or nothing
listening.  One request at a time, each bounded by TIMEOUT_S.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Callable

TIMEOUT_S = 2.0


class _Handler(BaseHTTPRequestHandler):
    timeout = TIMEOUT_S
    page: Callable[[], str | None]

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = self.page() if self.path.split("?")[0].lower() == "/deviceinformationx" else None
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


class WebServer:
    """start()/stop() as often as the phone boots; `port` stays the one first bound (0: any free port)."""

    def __init__(self, host: str, port: int, page: Callable[[], str | None]):
        self.host, self.port, self.page = host, port, page
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, host: str | None = None) -> None:
        if self._server is not None:
            return
        self.host = host or self.host
        handler = type("Handler", (_Handler,), {"page": staticmethod(self.page)})
        server = HTTPServer((self.host, self.port), handler, bind_and_activate=False)
        server.allow_reuse_address = True
        try:
            server.server_bind()
            server.server_activate()
        except OSError as exc:              # a phone without its page still boots
            server.server_close()
            self.error = str(exc)
            return
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(TIMEOUT_S + 1)
        self._server = self._thread = None
