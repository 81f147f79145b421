"""The API's phone view and report show the firmware kind beside the load and a conversion as its own result
(appliance/api/views.py, issue 27 item 5), from rows the recovery core writes (recovery/memory.py)."""
from __future__ import annotations

from appliance.api import views
from appliance.recovery.diagnosis import Code, Need, Note
from appliance.recovery.facts import PhoneState as S
from appliance.recovery.memory import from_row, to_row
from appliance.recovery.phone import Phone

ENT, TL, MPP = "sip78xx.12-5-1SR1-4", "sip78xx.TLexE2M-11-2-3C-12", "sip78xx.11-3-5MPP0001-10"


def row(p: Phone) -> dict:
    return {"mac": p.mac, "first_seen": 1.0, "last_seen": 2.0, **to_row(p)}


def test_firmware_kinds_and_a_finished_conversion():
    p = Phone("00562b047841", model="CP-7841", current=MPP, plan=[], state=S.DONE, converted_from="enterprise",
              note=Note(Code.ON_LOAD, (MPP,)))
    view = views.phone(row(p))
    assert view["firmware"] == "mpp" and view["target_firmware"] == "mpp" and view["conversion"] == "converted"
    assert views.result(row(p)) == "converted"
    assert from_row(row(p)).converted_from == "enterprise"


def test_a_conversion_under_way_and_a_plain_recovery():
    p = Phone("00562b047841", model="CP-7841", current=TL, plan=[TL, MPP], step=1, state=S.CONFIGURED,
              converted_from="enterprise")
    view = views.phone(row(p))
    assert view["firmware"] == "transition" and view["target_firmware"] == "mpp" and view["conversion"] == "converting"
    q = Phone("00562b048851", model="CP-8851", current="sip88xx.11-3-3MPP0001-377", state=S.DONE)
    assert views.phone(row(q))["conversion"] is None and views.result(row(q)) == "recovered"
    assert views.phone(row(Phone("00562b040000")))["firmware"] is None


def test_a_refused_conversion_says_so_and_shows_no_licence_beyond_its_name():
    need = Need("licence", "CP-7841", "mpp", low="00562B047841.lic")
    p = Phone("00562b047841", model="CP-7841", current=ENT, state=S.STUCK, note=Note(Code.CONVERT_REFUSED, (need,)))
    view = views.phone(row(p))
    assert view["conversion"] == "refused" and view["firmware"] == "enterprise"
    assert "00562B047841.lic" in view["diagnosis"] and views.result(row(p)) == "failed"


def test_the_report_carries_the_firmware_kind_and_the_conversion(tmp_path):
    from appliance.store import Store
    store = Store(tmp_path / "station.db")
    done = Phone("00562b047841", model="CP-7841", current=MPP, state=S.DONE, converted_from="enterprise")
    store.phones.upsert(done.mac, **to_row(done))
    (got,) = views.report(store)
    assert got["firmware"] == "mpp" and got["conversion"] == "converted" and got["result"] == "converted"
    assert set(views.REPORT_FIELDS) == set(got)
    store.close()


def test_the_firmware_panel_shows_mpp_targets_and_never_a_transition_load_as_one(station_config):
    from pathlib import Path

    from appliance.api.firmware import roles
    from appliance.firmware import synth
    from appliance.firmware.catalog import Catalog
    root = Path(station_config.tftp.root)
    for load in (ENT, TL, MPP):
        synth.write_zip(root, load, size_bytes=4000)
    cat = Catalog.from_config(station_config)
    cat.scan()
    got = {(r["model"], r["protocol"]): r["target"] for r in roles(cat, station_config)}
    assert got[("CP-7841", "mpp")] == MPP and got[("CP-7841", "sip")] == ENT
    assert not [k for k in got if k[1] == "transition"]
