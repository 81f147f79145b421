"""[upgrade] convert to and from multiplatform firmware (appliance/recovery/validate.py, settings.Upgrade.platform):
per model or per MAC, "mpp" or "enterprise"; a bad entry names its key and where it was set, and nothing starts."""
from __future__ import annotations

import pytest

from appliance.recovery import validate
from tests.test_config import run_check, write


@pytest.mark.parametrize("text,key,words", [
    ('"7999" = "mpp"\n', "convert.7999", "unknown phone model"),
    ('"8831" = "mpp"\n', "convert.8831", "8821 and 8831 as not eligible"),
    ('"6851" = "enterprise"\n', "convert.6851", "multiplatform firmware only"),
    ('"7965" = "mpp"\n', "convert.7965", "does not list this model"),
    ('"00:56:2b:04:36:15" = "sip"\n', "convert.00:56:2b:04:36:15", "must be 'mpp' or 'enterprise'"),
    ('"00562b043615" = "h323"\n', "convert.00562b043615", "must be 'mpp' or 'enterprise'"),
])
def test_a_bad_conversion_exits_2_naming_the_key_and_the_file(tmp_path, station_env, text, key, words):
    path = write(tmp_path, "[upgrade.convert]\n" + text)
    result = run_check({**station_env, "APPLIANCE_CONFIG": str(path)})
    assert result.returncode == 2, result.stdout
    assert key in result.stderr and words in result.stderr and str(path) in result.stderr


def test_models_and_macs_in_any_spelling(tmp_path, station_env):
    path = write(tmp_path, '[upgrade.convert]\n"7841" = "MPP"\n"CP-8851" = "enterprise"\n"00-56-2B-04-36-15" = "mpp"\n'
                           '"7965" = "sip"\n')
    up = validate.load(environ={**station_env, "APPLIANCE_CONFIG": str(path)}).upgrade
    assert up.platform == {"CP-7841": "mpp", "CP-8851": "sip", "00562b043615": "mpp"}
    assert up.convert == {"7965": "sip"}          # the SCCP/SIP conversion is untouched
    env = {**station_env, "APPLIANCE_UPGRADE_CONVERT": "7999=mpp"}
    with pytest.raises(validate.ConfigError) as info:
        validate.load(environ=env)
    assert str(info.value).startswith("environment APPLIANCE_UPGRADE_CONVERT")
