"""Flask app factory: JSON under /api/v1/, SSE, /metrics, the dashboard at /.

Reads come straight from the shared store.  The three writes (retry a phone,
forget a lease, rescan firmware) only append facts to the store for the owning
service to act on, and need `Authorization: Bearer <[api] token>`.
"""
from __future__ import annotations

import csv
import hmac
import io
import re
from functools import wraps
from importlib import resources
from typing import Any, Callable

from flask import Flask, Response, abort, jsonify, request

from .. import events as ev
from ..config import Config, normalize_mac
from ..store import Store
from ..text import clean
from . import firmware, progress, sse, views

API = "/api/v1"


def _error(status: int, message: str) -> Response:
    resp = jsonify({"error": message, "status": status})
    resp.status_code = status
    return resp


MAC_FORMS = re.compile(r"^(?:[0-9A-Fa-f]{12}|(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}|(?:[0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4})$")


def _mac(text: str) -> str:
    """Accept exactly the MAC spellings the OpenAPI document declares."""
    try:
        if not MAC_FORMS.fullmatch(text):
            raise ValueError(text)
        return normalize_mac(text)
    except ValueError:
        abort(_error(400, f"not a MAC address: {clean(repr(text), 80)}"))


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(_error(400, f"{name} must be an integer"))
    if not low <= value <= high:
        abort(_error(400, f"{name} must be between {low} and {high}"))
    return value


def create_app(cfg: Config, store: Store | None = None, streams: sse.Slots | None = None) -> Flask:
    """The API and dashboard over `store` (default: the station's); `streams` bounds the open event streams
    (default: what a 16-thread server can spare, see sse.Slots)."""
    app = Flask(__name__, static_folder=None)
    app.config["JSON_SORT_KEYS"] = False
    db = store or Store(cfg.db_path)
    token = cfg.api.token
    slots = streams or sse.Slots.for_threads(16)
    app.extensions["event_streams"] = slots

    def writer(func: Callable) -> Callable:
        @wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not token:
                return _error(403, "writes are disabled: no [api] token is configured "
                                   "(set it in the config or APPLIANCE_API_TOKEN)")
            given = request.headers.get("Authorization", "")
            if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].strip().encode(), token.encode()):
                resp = _error(401, "missing or wrong bearer token")
                resp.headers["WWW-Authenticate"] = 'Bearer realm="recovery-station"'
                return resp
            return func(*args, **kwargs)
        return wrapped

    @app.errorhandler(404)
    def not_found(_e: Exception) -> Response:
        return _error(404, "not found")

    @app.errorhandler(405)
    def bad_method(e: Exception) -> Response:
        resp = _error(405, "method not allowed")
        resp.headers["Allow"] = ", ".join(sorted(getattr(e, "valid_methods", None) or []))
        return resp

    @app.get(f"{API}/health")
    def health() -> Response:
        doc = views.health(cfg, db)
        resp = jsonify(doc)
        resp.status_code = 200 if doc["ok"] else 503
        return resp

    def load_catalog() -> Any:
        """The catalog for whole-load progress (an mtime poll), or None when it cannot be read."""
        try:
            cat = firmware.catalog(cfg)
            cat.refresh()
            return cat
        except Exception as exc:  # the phone list never fails for the catalog's sake
            app.logger.warning("firmware catalog unavailable for load progress: %s", exc)
            return None

    @app.get(f"{API}/phones")
    def phones() -> Response:
        return jsonify({"phones": progress.attach(views.phones(db), db, load_catalog())})

    @app.get(f"{API}/phones/<mac>")
    def phone(mac: str) -> Response:
        mac = _mac(mac)
        row = db.phones.get(mac)
        if row is None:
            return _error(404, f"no phone {mac}")
        running = views.running_by_mac(db).get(mac)
        doc = progress.attach([views.phone(row, running)], db, load_catalog())[0]
        doc["timeline"] = views.timeline(db, mac)
        doc["transfers"] = [views.transfer(t) for t in db.transfers.recent(mac=mac, limit=200)]
        return jsonify(doc)

    def command(kind: str, mac: str, exists: object, missing: str, queued: str) -> Response:
        """Append a command for the owning service (202), or 404 naming what is not there."""
        if exists is None:
            return _error(404, f"{missing} {mac}")
        db.events.add("api", kind, mac, by=request.remote_addr)
        resp = jsonify({"mac": mac, "queued": queued})
        resp.status_code = 202
        return resp

    @app.post(f"{API}/phones/<mac>/retry")
    @writer
    def retry(mac: str) -> Response:
        mac = _mac(mac)
        return command(ev.PHONE_RETRY, mac, db.phones.get(mac), "no phone", "retry")

    @app.get(f"{API}/leases")
    def leases() -> Response:
        return jsonify({"leases": [views.lease(r) for r in db.leases.all()]})

    @app.delete(f"{API}/leases/<mac>")
    @writer
    def forget_lease(mac: str) -> Response:
        mac = _mac(mac)
        return command(ev.LEASE_FORGET, mac, db.leases.of(mac), "no lease for", "forget")

    @app.get(f"{API}/transfers")
    def transfers() -> Response:
        mac = request.args.get("mac")
        limit = _int_arg("limit", 200, 1, 5000)
        running_arg = request.args.get("running", "false")
        if running_arg not in ("true", "false", "1", "0"):
            return _error(400, "running must be true, false, 1 or 0")
        running = running_arg in ("true", "1")
        rows = db.transfers.recent(mac=_mac(mac) if mac is not None else None, limit=limit, running_only=running)
        return jsonify({"transfers": [views.transfer(t) for t in rows]})

    @app.get(f"{API}/firmware")
    def firmware_get() -> Response:
        return jsonify(firmware.summary(cfg))

    @app.post(f"{API}/firmware/rescan")
    @writer
    def firmware_rescan() -> Response:
        doc = firmware.summary(cfg, rescan=True)
        db.events.add("api", ev.CATALOG_RESCAN, None, by=request.remote_addr)
        resp = jsonify(doc)
        resp.status_code = 202
        return resp

    @app.get(f"{API}/events")
    def events() -> Response:
        after = request.headers.get("Last-Event-ID") or request.args.get("after")
        if after is None:
            start = sse.latest_id(db)
        else:
            try:
                start = int(after)
            except ValueError:
                return _error(400, "after / Last-Event-ID must be an integer event id")
            if start < 0:
                start = sse.latest_id(db) + start + 1 if start >= -100000 else 0
        duration = _int_arg("duration", int(sse.MAX_STREAM_SECONDS), 0, int(sse.MAX_STREAM_SECONDS))
        mac = request.args.get("mac")
        mac = _mac(mac) if mac is not None else None
        ip = request.remote_addr or ""
        refusal = slots.take(ip)
        if refusal is not None:
            resp = _error(503, refusal)
            resp.headers["Retry-After"] = str(sse.RETRY_AFTER_S)
            return resp
        body = sse.Stream(db, start, duration, mac, slots=slots, ip=ip,
                          sock=request.environ.get("gunicorn.socket"))
        return Response(body, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get(f"{API}/report")
    def report() -> Response:
        fmt = request.args.get("format", "json")
        rows = views.report(db)
        if fmt == "json":
            return jsonify({"phones": rows})
        if fmt != "csv":
            return _error(400, "format must be csv or json")
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=views.REPORT_FIELDS, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: _csv_safe(v) for k, v in row.items()})
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=recovery-report.csv"})

    @app.get(f"{API}/openapi.json")
    def openapi() -> Response:
        return Response(resources.files(__package__).joinpath("openapi.json").read_text(),
                        mimetype="application/json")

    @app.get("/metrics")
    def prom() -> Response:
        from . import metrics  # prometheus_client costs ~3 MiB; loaded on the first scrape, not by every station

        return Response(metrics.render(cfg, db), mimetype="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/")
    def dashboard() -> Response:
        return _static("dashboard.html", "text/html; charset=utf-8")

    @app.get("/static/<name>")
    def static_file(name: str) -> Response:
        types = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
        if name not in types:
            return _error(404, "not found")
        return _static(name, f"{types[name]}; charset=utf-8")

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        if resp.mimetype == "text/html":
            resp.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                                       "img-src 'self' data:; object-src 'none'")
        return resp

    return app


def _static(name: str, mimetype: str) -> Response:
    body = resources.files(__package__).joinpath("static", name).read_bytes()
    resp = Response(body, mimetype=mimetype.split(";")[0])
    resp.headers["Content-Type"] = mimetype
    resp.headers["Cache-Control"] = "no-cache"
    return resp


def _csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas in strings that came from the network."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
