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
