"""Settings from the environment (12-factor) and the log formats."""

from __future__ import annotations

import json
import logging

import pytest

from basketry.serving import Settings, SettingsError
from basketry.serving.logs import JsonFormatter, TextFormatter
from basketry.serving.state import ModelRefError, read_catalogue, resolve_model_ref


def test_defaults_are_safe() -> None:
    s = Settings()
    assert s.host == "127.0.0.1" and s.workers == 1 and s.admin_token is None
    assert s.watch == 0 and s.log_format == "auto" and s.verify is True
    assert s.cors_origins == ""  # no origin may call from a browser
    assert s.keep_alive == 5  # uvicorn's own default


def test_environment_then_overrides() -> None:
    env = {"BASKETRY_MODEL": "/models/x", "BASKETRY_PORT": "9000", "BASKETRY_WORKERS": "2",
           "BASKETRY_WATCH": "2.5", "BASKETRY_LOG_FORMAT": "text", "BASKETRY_ACCESS_LOG": "off",
           "BASKETRY_MAX_K": "20", "BASKETRY_ADMIN_TOKEN": "0123456789",
           "BASKETRY_KEEP_ALIVE": "75"}
    s = Settings.from_env(env, port=None, workers=4)
    assert s.keep_alive == 75
    assert (s.model, s.port, s.workers, s.watch) == ("/models/x", 9000, 4, 2.5)
    assert s.log_format == "text" and s.access_log is False and s.max_k == 20
    assert s.public()["admin_token"] == "***"


@pytest.mark.parametrize(("env", "needle"), [
    ({"BASKETRY_PORT": "http"}, "BASKETRY_PORT"),
    ({"BASKETRY_PORT": "0"}, "BASKETRY_PORT"),
    ({"BASKETRY_LOG_FORMAT": "xml"}, "BASKETRY_LOG_FORMAT"),
    ({"BASKETRY_ADMIN_TOKEN": "short"}, "BASKETRY_ADMIN_TOKEN"),
    ({"BASKETRY_DEFAULT_K": "60"}, "BASKETRY_DEFAULT_K"),
    ({"BASKETRY_ACCESS_LOG": "maybe"}, "BASKETRY_ACCESS_LOG"),
    ({"BASKETRY_KEEP_ALIVE": "0"}, "BASKETRY_KEEP_ALIVE"),
    ({"BASKETRY_KEEP_ALIVE": "inf"}, "BASKETRY_KEEP_ALIVE"),
    ({"BASKETRY_KEEP_ALIVE": "nan"}, "BASKETRY_KEEP_ALIVE"),
])
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env(env)


def test_model_references(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert resolve_model_ref(str(tmp_path)) == tmp_path.resolve()
    with pytest.raises(ModelRefError, match="no model directory"):
        resolve_model_ref(str(tmp_path / "missing"))
    with pytest.raises(ModelRefError, match="registry"):
        resolve_model_ref("models:/basketry@champion")


def test_catalogue_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.txt"
    path.write_text("# banned\nA1\n\n  B2  # recalled\nA1\n")
    assert read_catalogue(path) == {"A1", "B2"}


def test_log_formats_carry_extras() -> None:
    record = logging.LogRecord("basketry.serving.access", logging.INFO, __file__, 1, "request",
                               (), None)
    record.request_id = "abc"
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abc" and line["level"] == "info" and line["ts"]
    assert "request_id=abc" in TextFormatter().format(record)
