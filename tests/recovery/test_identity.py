"""appliance/recovery/identity.py: only the address a MAC leased speaks for it."""
from __future__ import annotations

from appliance.recovery.identity import MAX_HOLDERS, Identity

A, B = "001b2c3d4e5f", "001b2c3d4e60"


def test_the_holder_of_an_address_and_the_mac_in_a_name():
    ids = Identity(lease_s=100)
    ids.lease(A.upper(), "10.0.0.5", "CP-7965G", None, now=0)
    assert ids.who("10.0.0.5", None, 1) == (A, "")
    assert ids.who("10.0.0.5", A, 1) == (A, "")
    assert ids.who("10.0.0.5", B, 1) == (None, "not its MAC")
    assert ids.who("10.0.0.6", A, 1) == (None, "no lease")
    assert ids.who(None, None, 1) == (None, "no lease")
    assert ids.who("10.0.0.5", None, 100) == (None, "no lease")     # expired


def test_a_new_address_releases_the_old_and_a_taken_address_displaces_its_holder():
    ids = Identity()
    ids.lease(A, "10.0.0.5", "m", 50, now=0)
    ids.lease(A, "10.0.0.6", "", 50, now=0)
    assert ids.holder("10.0.0.5", 1) is None and ids.holder("10.0.0.6", 1).model == "m"
    assert ids.lease(B, "10.0.0.6", "m", 50, now=0) == A
    assert ids.of(A) is None and ids.holder("10.0.0.6", 1).mac == B
    ids.forget(B)
    assert ids.holder("10.0.0.6", 1) is None and len(ids) == 0


def test_the_table_is_bounded():
    ids = Identity()
    for i in range(MAX_HOLDERS + 5):
        ids.lease(f"{i:012x}", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "", 1000 + i, now=0)
    assert len(ids) == MAX_HOLDERS
    assert ids.of(f"{0:012x}") is None and ids.of(f"{MAX_HOLDERS + 4:012x}") is not None
    assert sorted(ids.expired(1003 + 5)) == [f"{i:012x}" for i in range(5, 9)]
