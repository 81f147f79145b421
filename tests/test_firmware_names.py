"""What 7800/8800 file names mean (names.py) and which names are packages (unpack.is_archive).

Names from the reference (phone-families.md §2.1): 7800 components kern78xx/kern2.78xx/sboot/rootfs .sbn,
88xx fbi88xx/sb288xx/vc488xx .sbn, load IDs sip78xx.*, sip88xx.*, sip8845_65.*, sip7832.*, sip8832.*; packages
cmterm-78xx.11-5-1-18.zip, cmterm-88xx.12-8-1-0001-455.zip, cmterm-8845_65.12-8-1-0001-455.zip,
cmterm-88xx-sip.12-8-1-0001-455.k3.cop.sgn, cmterm-78xx.14-4-1-0301-6.k4.cop.sha512.
"""
from __future__ import annotations

import pytest

from appliance.firmware.names import Kind, classify
from appliance.firmware.unpack import is_archive


@pytest.mark.parametrize("asked,load", [
    ("sip78xx.11-0-1-11.loads", "sip78xx.11-0-1-11"), ("/SIP88XX.12-5-1SR3-74.LOADS", "SIP88XX.12-5-1SR3-74"),
    ("sip8845_65.12-8-1-0001-455.loads", "sip8845_65.12-8-1-0001-455"),
    ("sip7832.14-4-1-0301-6.loads", "sip7832.14-4-1-0301-6"), ("sip8832.14-0-1-0201-171.loads", "sip8832.14-0-1-0201-171"),
])
def test_5th_generation_manifests(asked, load):
    name = classify(asked)
    assert name.kind is Kind.MANIFEST and name.load == load


@pytest.mark.parametrize("asked", ["kern78xx.11-0-1-11.sbn", "KERN2.78XX.11-0-1-11.SBN", "rootfs2.78xx.11-0-1-11.sbn",
                                   "sboot2.78xx.11-0-1-11.sbn", "fbi88xx.BE-01-010.sbn", "sb288xx.BE-01-020.sbn",
                                   "vc488xx.12-0-1MN-113.sbn", "/rootfs88xx.12-0-1MN-113.sbn"])
def test_5th_generation_components(asked):
    assert classify(asked).kind is Kind.COMPONENT


@pytest.mark.parametrize("name", ["cmterm-78xx.11-5-1-18.zip", "cmterm-88xx.12-8-1-0001-455.zip",
                                  "cmterm-8845_65.12-8-1-0001-455.zip", "cmterm-88xx-sip.12-8-1-0001-455.k3.cop.sgn",
                                  "cmterm-8845_65-sip.12-8-1-0001-455.k3.cop.sgn",
                                  "cmterm-78xx.14-4-1-0301-6.k4.cop.sha512", "CMTERM-78XX.14-4-1-0301-6.K4.COP.SHA512"])
def test_7800_8800_packages_are_archives(name):
    assert is_archive(name)
