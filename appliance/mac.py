"""MAC addresses as the station stores them everywhere: 12 lower-case hex digits.  Pure."""
from __future__ import annotations

import re

MAC_RE = re.compile(r"^[0-9a-f]{12}$")


def normalize_mac(text: str) -> str:
    """`00:1B-2c.3D4e5F` -> `001b2c3d4e5f`.

    Raises:
        ValueError: not 12 hex digits (separators ':', '-', '.' and spaces allowed between them).
    """
    mac = re.sub(r"[^0-9a-fA-F]", "", text).lower()
    if not MAC_RE.match(mac) or len(re.sub(r"[:\-.\s]", "", text)) != 12:
        raise ValueError(f"not a MAC address: {text!r}")
    return mac
