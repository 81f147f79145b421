"""Enterprise <-> MPP conversion rules as data (appliance/firmware/conversion.py + conversion.toml)."""
from __future__ import annotations

import pytest

from appliance.firmware import conversion
from appliance.firmware.conversion import ConversionError, load, refusal


def test_the_releases_cisco_requires():
    assert conversion.human(conversion.ENTERPRISE_MINIMUM) == "12.5(1)"
    assert conversion.human(conversion.DIRECT_LOW) == "14.0(1)" and conversion.human(conversion.DIRECT_HIGH) == "14.1(1)"
    assert conversion.human(conversion.MPP_BACK_MINIMUM) == "11.3(5)"


@pytest.mark.parametrize("model,vid,kind,words", [
    ("8831", None, "model", "8821 and 8831"), ("CP-6871", "V01", "model", "multiplatform firmware only"),
    ("7965", None, "model", "does not list"), ("7841", "V03", "hardware", "V04"), ("7821", "v02", "hardware", "V03"),
    ("7861", "2", "hardware", "V03"),
])
def test_refused(model, vid, kind, words):
    found = refusal(model, vid)
    assert found is not None and found.kind == kind and words in found.why


@pytest.mark.parametrize("model,vid", [("7841", "V04"), ("7841", None), ("7841", "1.0"), ("8851", "V15"),
                                       ("CP-8865NR", None), ("7821", "V24"), ("7832", None)])
def test_eligible(model, vid):
    assert refusal(model, vid) is None


@pytest.mark.parametrize("text,words", [
    ('[releases]\nenterprise_minimum = "x"\n', "releases.enterprise_minimum"),
    ('[releases]\nenterprise_minimum = "12.5(1)"\ndirect_low = "14.0(1)"\ndirect_high = "14.1(1)"\n'
     'mpp_back_minimum = "11.3(5)"\n[[eligible]]\nmodels = ["CP-9999"]\nsource = "s"\n', "eligible 1: models"),
    ('[releases]\nenterprise_minimum = "12.5(1)"\ndirect_low = "14.0(1)"\ndirect_high = "14.1(1)"\n'
     'mpp_back_minimum = "11.3(5)"\n[[eligible]]\nmodels = ["CP-7841"]\n', "eligible 1: source"),
    ('[releases]\nenterprise_minimum = "12.5(1)"\ndirect_low = "14.0(1)"\ndirect_high = "14.1(1)"\n'
     'mpp_back_minimum = "11.3(5)"\n[[eligible]]\nmodels = ["CP-7841"]\nsource = "s"\nvid_from = 100\n',
     "eligible 1: vid_from"),
])
def test_a_bad_table_names_the_row_and_key(text, words):
    with pytest.raises(ConversionError) as info:
        load(text)
    assert words in str(info.value)
