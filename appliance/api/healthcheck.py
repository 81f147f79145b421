"""Container HEALTHCHECK: a real TFTP read of a generated file, then GET /api/v1/health.

A port probe would call a wedged server healthy; reading XMLDefault.cnf.xml
over TFTP exercises the file service and the catalog behind it, and the
health endpoint proves the API and every heartbeat, and carries the red
problems (appliance/problems.py: no firmware, DHCP not serving, link down, a
service down, ...), each printed with what to do.  Exit 0 healthy, 1 not.
"""
from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

from .. import config as configmod
from ..text import clean
from ..tftp.fetch import fetch

PROBE_FILE = "XMLDefault.cnf.xml"
TIMEOUT = 3.0
MAX_BYTES = 1 << 20        # XMLDefault.cnf.xml is a few KiB; a health probe reads no firmware


def api_health(host: str, port: int) -> dict:
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/v1/health", timeout=TIMEOUT) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def check(cfg: configmod.Config) -> list[str]:
    problems = []
    try:
        body = fetch(cfg.network.address, cfg.tftp.port, PROBE_FILE, timeout=TIMEOUT, retries=1,
                     max_bytes=MAX_BYTES, deadline_s=3 * TIMEOUT)
        if b"<" not in body:
            problems.append(f"tftp: {PROBE_FILE} is not XML ({len(body)} bytes)")
    except OSError as exc:
        problems.append(f"tftp: reading {PROBE_FILE} from {cfg.network.address}:{cfg.tftp.port}: {exc}")
    try:
        doc = api_health(cfg.api.host, cfg.api.port)
        red = [p for p in doc.get("problems", []) if isinstance(p, dict) and p.get("severity") == "red"]
        problems += [clean(f"{p.get('what')} To fix: {p.get('do')}", 1024) for p in red]
        if not doc.get("ok") and not red:
            problems.append("api: health is not ok and names no problem")
    except (OSError, ValueError, AttributeError) as exc:
        problems.append(f"api: {exc}")
    return problems


def main() -> int:
    try:
        cfg = configmod.load()
    except configmod.ConfigError as exc:
        print(f"unhealthy: bad config: {exc}")
        return 1
    problems = check(cfg)
    print("healthy" if not problems else "unhealthy: " + "\n  ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
