"""One admission policy for TFTP and HTTP :6970: the order of its questions and the words of each refusal."""
from __future__ import annotations

import pytest

from appliance.tftp import admission
from appliance.tftp import packets as pk

CASES = [
    (dict(write=True, allowed=False, found=False), admission.WRITE),
    (dict(write=False, allowed=False, found=False), admission.NAME),
    (dict(write=False, allowed=True, found=False, mode_ok=False), admission.MISSING),
    (dict(write=False, allowed=True, found=True, mode_ok=False, mode="mail"), "mail mode"),
    (dict(write=False, allowed=True, found=True, mode_ok=False, mode="netascii", netascii_max=16 << 20),
     "netascii over 16 MiB"),
    (dict(write=False, allowed=True, found=True), None),
]


@pytest.mark.parametrize("request_,want", CASES)
def test_first_refusal_that_applies(request_, want):
    got = admission.decide(**request_)
    if isinstance(want, str):
        assert got is not None and got.reason == want and got.tftp_code == pk.ERR_ILLEGAL
    else:
        assert got == want


def test_each_refusal_speaks_both_protocols():
    assert (admission.NAME.tftp_code, admission.NAME.http_status) == (pk.ERR_ACCESS, 403)
    assert (admission.MISSING.tftp_code, admission.MISSING.http_status, admission.MISSING.result) == \
        (pk.ERR_NOT_FOUND, 404, "not found")
    assert (admission.BUSY.tftp_code, admission.BUSY.http_status) == (pk.ERR_UNDEFINED, 503)
    assert admission.WRITE.http_status == 405
    for refusal in (admission.WRITE, admission.NAME, admission.BUSY):
        assert refusal.result == "refused" and refusal.reason


# ---- room: per address, overall, the phones' reserve (issue 24) ------------------------------------------
SHARES = admission.Shares(max_sessions=10, per_client=3, phone_reserve=4)     # strangers share 6


@pytest.mark.parametrize("phone,total,others,mine,evictable,want", [
    (False, 0, 0, 0, 0, admission.ADMIT),
    (False, 5, 5, 2, 5, admission.ADMIT),
    (False, 5, 5, 3, 5, admission.BUSY_CLIENT),          # per address, whoever asks
    (True, 5, 5, 3, 5, admission.BUSY_CLIENT),
    (False, 6, 6, 0, 6, admission.BUSY_SHARE),           # strangers never reach into the reserve
    (False, 10, 3, 0, 3, admission.BUSY),                # under their share, but phones hold the rest
    (True, 6, 6, 0, 6, admission.ADMIT),                 # the reserve is the phones'
    (True, 9, 6, 0, 6, admission.ADMIT),
    (True, 10, 6, 0, 6, admission.EVICT),                # full: a stranger's session goes for the phone
    (True, 10, 6, 0, 0, admission.BUSY),                 # full of strangers' HTTP bodies: none to end
    (True, 10, 0, 0, 0, admission.BUSY),                 # full of phones
])
def test_room_keeps_a_reserve_for_phones_and_caps_each_address(phone, total, others, mine, evictable, want):
    assert admission.room(SHARES, phone=phone, total=total, others=others, mine=mine, evictable=evictable) == want


def test_each_busy_refusal_is_worded_for_both_protocols():
    for refusal in (admission.BUSY_CLIENT, admission.BUSY_SHARE):
        assert refusal.result == "refused" and refusal.reason and refusal.http_status == 503
        assert refusal.tftp_code == pk.ERR_UNDEFINED and "busy" in refusal.tftp_text
    assert "your address" in admission.BUSY_CLIENT.tftp_text


def test_reserve_of_a_percent():
    assert admission.reserve_of(200, 50) == 100
    assert admission.reserve_of(5, 50) == 2
    assert admission.reserve_of(5, 1) == 1          # a small cap still keeps one slot for a phone
    assert admission.reserve_of(5, 0) == 0
    assert admission.reserve_of(5, 100) == 5 and admission.reserve_of(5, 250) == 5
    assert admission.Shares(5, 3, 5).others_max == 0


def test_longest_idle_is_the_oldest_progress():
    assert admission.longest_idle([(1, 50.0), (7, 20.0), (3, 20.0), (4, 90.0)]) == 7
    assert admission.longest_idle([]) is None
