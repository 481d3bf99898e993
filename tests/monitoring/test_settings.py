"""Monitoring settings: read once from the environment, validated, secrets hidden."""

from __future__ import annotations

import pytest

from basketry.monitoring.settings import MonitorSettings, MonitorSettingsError


def test_defaults_put_the_store_under_basketry_home(tmp_path):
    settings = MonitorSettings.from_env({"BASKETRY_HOME": str(tmp_path)})
    assert settings.capture and settings.sample_rate == 1.0  # every answer recorded
    assert settings.url({"BASKETRY_HOME": str(tmp_path)}) == \
        f"sqlite:///{tmp_path.resolve() / 'monitoring.db'}"


def test_environment_and_overrides():
    env = {"BASKETRY_MONITOR_DB": "postgresql://u:pw@db/m", "BASKETRY_MONITOR_CAPTURE": "off",
           "BASKETRY_MONITOR_SAMPLE_RATE": "0.25", "BASKETRY_MONITOR_RETENTION_DAYS": "90",
           "BASKETRY_MONITOR_CUSTOMER_KEY": "k" * 32, "BASKETRY_MONITOR_QUEUE_SIZE": ""}
    settings = MonitorSettings.from_env(env, batch_size=10, sample_rate=None)
    assert settings.url() == "postgresql://u:pw@db/m"
    assert (settings.capture, settings.sample_rate, settings.retention_days,
            settings.batch_size, settings.queue_size) == (False, 0.25, 90, 10, 100_000)
    public = settings.public()
    assert public["customer_key"] == "***" and public["db"] == "postgresql://u:***@db/m"


@pytest.mark.parametrize(("env", "message"), [
    ({"BASKETRY_MONITOR_SAMPLE_RATE": "1.5"}, "BASKETRY_MONITOR_SAMPLE_RATE must be between"),
    ({"BASKETRY_MONITOR_SAMPLE_RATE": "half"}, "BASKETRY_MONITOR_SAMPLE_RATE='half': expected"),
    ({"BASKETRY_MONITOR_QUEUE_SIZE": "0"}, "BASKETRY_MONITOR_QUEUE_SIZE must be >= 1"),
    ({"BASKETRY_MONITOR_CAPTURE": "maybe"}, "expected true/false"),
    ({"BASKETRY_MONITOR_RETENTION_DAYS": "-1"}, "RETENTION_DAYS must be >= 0"),
    ({"BASKETRY_MONITOR_MAX_DELAY": "0"}, "MAX_DELAY must be a number of seconds > 0"),
    ({"BASKETRY_MONITOR_CUSTOMER_KEY": "short"}, "CUSTOMER_KEY must be at least 16"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(MonitorSettingsError, match=message.replace("(", r"\(")):
        MonitorSettings.from_env(env)


def test_unknown_override():
    with pytest.raises(TypeError, match="unknown monitoring setting"):
        MonitorSettings.from_env({}, nonsense=1)
