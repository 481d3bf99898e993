"""The `basketry` command end to end, in process: what a user types and what they see."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from basketry.cli import app
from basketry.model import load_model, read_manifest

runner = CliRunner()

BASKETS = "\n".join(
    ["bread milk", "bread butter milk", "beer chips", "bread milk eggs", "beer chips salsa",
     "milk eggs", "bread butter", "beer salsa", "bread milk butter", "chips salsa"] * 3
) + "\n"


@pytest.fixture
def basket_file(tmp_path):
    path = tmp_path / "shop.dat"
    path.write_text(BASKETS)
    return path


def test_mine_then_rules_then_recommend(basket_file, tmp_path):
    out = tmp_path / "model"
    result = runner.invoke(app, ["mine", str(basket_file), "--min-support", "0.1",
                                 "--min-confidence", "0.5", "--out", str(out), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "model saved" in result.output
    manifest = read_manifest(out)
    assert "n_jobs" not in manifest["parameters"]  # how it ran, not what it found
    assert manifest["parameters"]["min_count"] == 3  # ceil(0.1 * 30)
    assert manifest["dataset"]["n_baskets"] == 30
    assert manifest["dataset"]["fingerprint"].startswith("sha256:")

    rules = runner.invoke(app, ["rules", str(out), "--output", "json", "--sort", "confidence"])
    assert rules.exit_code == 0, rules.output
    rows = json.loads(rules.output)
    assert rows and all(r["confidence"] >= 0.5 for r in rows)
    confidences = [r["confidence"] for r in rows]
    assert confidences == sorted(confidences, reverse=True)

    only = runner.invoke(app, ["rules", str(out), "--item", "salsa", "--output", "csv"])
    assert only.exit_code == 0
    lines = only.output.strip().splitlines()[1:]
    assert lines and all("salsa" in line for line in lines)

    rec = runner.invoke(app, ["recommend", str(out), "beer", "-k", "2"])
    assert rec.exit_code == 0, rec.output
    assert "chips" in rec.output or "salsa" in rec.output
    model = load_model(out)
    assert model.recommend(["beer"], k=1).items[0].item in {"chips", "salsa"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-support", "0"], "min_support"),
        (["--min-support", "0.1", "--min-confidence", "1.5"], "min_confidence"),
        (["--format", "xml"], "format"),
        (["--min-support", "0.1", "--jobs", "0"], "n_jobs"),
    ],
)
def test_bad_parameters_exit_2_and_write_nothing(basket_file, tmp_path, args, message):
    out = tmp_path / "model"
    result = runner.invoke(app, ["mine", str(basket_file), "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [basket_file]


def test_missing_file_and_missing_column(tmp_path):
    out = tmp_path / "model"
    result = runner.invoke(app, ["mine", str(tmp_path / "nope.csv"), "--out", str(out)])
    assert result.exit_code == 2 and "nope.csv" in result.output
    table = tmp_path / "sales.csv"
    table.write_text("order,sku\n1,a\n1,b\n2,a\n")
    result = runner.invoke(app, ["mine", str(table), "--out", str(out), "--format", "long-csv",
                                 "--transaction-col", "order", "--item-col", "product"])
    assert result.exit_code == 2
    assert "product" in result.output and "sku" in result.output  # names what exists
    assert not out.exists()


def test_existing_model_is_not_overwritten_by_accident(basket_file, tmp_path):
    out = tmp_path / "model"
    args = ["mine", str(basket_file), "--min-support", "0.1", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    version = read_manifest(out)["model_version"]
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert read_manifest(out)["model_version"] == version  # same data, same parameters


def test_tampered_model_is_refused_by_rules_and_recommend(basket_file, tmp_path):
    out = tmp_path / "model"
    runner.invoke(app, ["mine", str(basket_file), "--min-support", "0.1", "--out", str(out)])
    rules_file = out / "rules.parquet"
    rules_file.write_bytes(rules_file.read_bytes()[:-1])
    for command in (["rules", str(out)], ["recommend", str(out), "beer"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "truncated" in result.output


def test_profile_prints_json(basket_file):
    result = runner.invoke(app, ["profile", str(basket_file)])
    assert result.exit_code == 0, result.output
    profile = json.loads(result.output)
    assert profile["n_baskets"] == 30 and profile["fingerprint"].startswith("sha256:")


def test_generate_writes_a_readable_file(tmp_path):
    out = tmp_path / "synthetic.parquet"
    result = runner.invoke(app, ["generate", str(out), "--baskets", "2000", "--items", "300",
                                 "--patterns", "5"])
    assert result.exit_code == 0, result.output
    mined = runner.invoke(app, ["mine", str(out), "--min-support", "0.01",
                                "--out", str(tmp_path / "m")])
    assert mined.exit_code == 0, mined.output
    assert read_manifest(tmp_path / "m")["dataset"]["n_baskets"] == 2000


def test_demo_trains_registers_gates_and_serves_the_champion(tmp_path, monkeypatch):
    """`make demo` twice from a fresh home: each run a new registered version gated against
    the champion, the champion alias resolving to a loadable model; same data and
    parameters, the same artifact (rules, checksums, model version) and the same metrics."""
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from basketry.model import read_artifact
    from basketry.serving.state import resolve_model_ref

    home = tmp_path / "home"
    monkeypatch.setenv("BASKETRY_HOME", str(home))
    monkeypatch.delenv("BASKETRY_TRACK")  # the demo tracks by default when MLflow is there
    out, ref = tmp_path / "demo", tmp_path / "demo.ref"
    served = []
    for run in (1, 2):
        result = runner.invoke(app, ["demo", "--out", str(out), "--serve-ref", str(ref)])
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        assert f"registered basketry version {run}: promoted to champion" in text
        assert "beats popularity" in text
        # the evaluation table fits 80 columns, rankers whole, the scoring said in words
        table = [line for line in result.output.splitlines()
                 if "HR@10" in line or line.strip().startswith(("max-confidence ", "item-kNN "))]
        # the hide-one table's header and two rows, and the after-the-purchase table's header
        assert len(table) == 4 and all(len(line) <= 80 for line in table), table
        assert not any("…" in line for line in table)
        assert "after the purchase: the next order of" in text
        assert "scoring: " in text and "{'method'" not in text
        if run == 2:
            assert "not worse than champion v1" in text  # gated against the champion
        assert ref.read_text().strip() == "models:/basketry@champion"
        assert "fallback" in text  # the unknown-item basket shows popular items
        assert "curl -s http://127.0.0.1:8000/v1/recommendations" in text
        path = resolve_model_ref("models:/basketry@champion")
        model = load_model(path)
        assert model.n_rules > 0 and model.version == read_manifest(out)["model_version"]
        served.append(path)
    assert (home / "mlflow.db").is_file()  # the embedded default store
    manifests = [read_manifest(p) for p in served]
    assert served[0] != served[1]
    assert manifests[0]["files"] == manifests[1]["files"]  # sha256 of every file
    assert manifests[0]["model_version"] == manifests[1]["model_version"]
    assert manifests[0]["metrics"] == manifests[1]["metrics"]
    assert read_artifact(served[0]).rules.equals(read_artifact(served[1]).rules)
    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = [client.get_run(client.get_model_version("basketry", v).run_id) for v in ("1", "2")]
    second = dict(runs[1].data.metrics)
    # the second run also measured the champion (the first model) on its split: same figure
    assert second.pop("champion.hit_rate_at_10") == second["model.hit_rate_at_10"]
    assert runs[0].data.metrics == second
    assert runs[0].data.params == runs[1].data.params


def test_demo_without_tracking_serves_the_directory(tmp_path):
    out, ref = tmp_path / "demo", tmp_path / "demo.ref"
    result = runner.invoke(app, ["demo", "--no-track", "--out", str(out), "--serve-ref",
                                 str(ref)])
    assert result.exit_code == 0, result.output
    assert "nothing was registered" in " ".join(result.output.split())
    assert ref.read_text().strip() == str(out)
    model = load_model(out)
    assert model.n_rules > 0 and model.manifest["metrics"]["split"]["method"] == "time"
    assert model.manifest["dataset"]["time_span"]["first"] is not None


def test_budget_stops_with_advice_and_writes_nothing(basket_file, tmp_path):
    out = tmp_path / "model"
    result = runner.invoke(app, ["mine", str(basket_file), "--min-support", "1",
                                 "--max-itemsets", "3", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "min_support" in result.output  # the advice names what to change
    assert not out.exists()


@pytest.mark.parametrize(("given", "min_count"), [("3", 3), ("0.1", 3), ("1", 1), ("1.0", 30)])
def test_min_support_integer_is_a_count_and_point_is_a_fraction(basket_file, tmp_path, given,
                                                                 min_count):
    out = tmp_path / "model"
    result = runner.invoke(app, ["mine", str(basket_file), "--min-support", given,
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_manifest(out)["parameters"]["min_count"] == min_count


# --- basketry serve: every setting is an option over its BASKETRY_* variable -----------------

_SERVE_LOGGERS = ("basketry", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture
def started(monkeypatch):
    """``basketry serve`` up to the start of uvicorn, which is replaced: the list receives the
    settings the workers would build from the environment serve() leaves them (the variables
    and the loggers serve() changes are restored after the test)."""
    import logging
    from dataclasses import fields

    import uvicorn

    from basketry.serving import Settings

    names = [f"BASKETRY_{f.name.upper()}" for f in fields(Settings)]
    for var in [*names, "BASKETRY_RUN_DIR", "PROMETHEUS_MULTIPROC_DIR"]:
        monkeypatch.setenv(var, "")  # recorded, so serve()'s exports are undone afterwards
        monkeypatch.delenv(var)
    loggers = [logging.getLogger(name) for name in _SERVE_LOGGERS]
    saved = [(list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in loggers]
    seen = []

    def run(app, **kwargs):
        seen.append((Settings.from_env(), kwargs))

    monkeypatch.setattr(uvicorn, "run", run)
    yield seen
    for logger, (handlers, level, propagate, disabled) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


def test_every_setting_is_a_serve_option():
    from dataclasses import fields

    from basketry.serving import Settings

    command = typer.main.get_command(app).commands["serve"]
    options = {p.name: p for p in command.params}
    assert {f.name for f in fields(Settings)} <= set(options)
    for name in ("access_log", "fast_path", "verify"):
        assert options[name].secondary_opts == [f"--no-{name.replace('_', '-')}"]
    for f in fields(Settings):  # not given: the variable or the default applies
        assert options[f.name].default is None, f.name
        assert f"BASKETRY_{f.name.upper()}" in (options[f.name].help or ""), f.name


def test_serve_options_reach_the_settings_the_workers_run_with(started):
    result = runner.invoke(app, [
        "serve", "--port", "8123", "--max-basket", "7", "--max-k", "9", "--default-k", "3",
        "--max-exclude", "4", "--max-batch", "6", "--max-item-length", "64",
        "--max-body-bytes", "1000", "--no-access-log", "--no-fast-path", "--no-verify",
        "--keep-alive", "65"])
    assert result.exit_code == 0, result.output
    [(settings, kwargs)] = started
    assert kwargs["port"] == 8123
    assert settings.keep_alive == kwargs["timeout_keep_alive"] == 65
    assert (settings.max_basket, settings.max_k, settings.default_k, settings.max_exclude,
            settings.max_batch, settings.max_item_length, settings.max_body_bytes) == (
        7, 9, 3, 4, 6, 64, 1000)
    assert (settings.access_log, settings.fast_path, settings.verify) == (False, False, False)


def test_serve_option_overrides_its_variable_and_an_absent_one_leaves_it(started, monkeypatch):
    env = {"BASKETRY_MAX_BASKET": "11", "BASKETRY_MAX_K": "20", "BASKETRY_DEFAULT_K": "15",
           "BASKETRY_ACCESS_LOG": "off", "BASKETRY_VERIFY": "false", "BASKETRY_FAST_PATH": "no"}
    # an absent flag, boolean or not, does not override its variable
    for args in (["--max-basket", "5", "--access-log", "--verify"], []):
        for var, value in env.items():  # again: serve() exported what it ran with
            monkeypatch.setenv(var, value)
        result = runner.invoke(app, ["serve", *args])
        assert result.exit_code == 0, result.output
    (given, _), (absent, _) = started
    assert (given.max_basket, given.access_log, given.verify) == (5, True, True)
    assert (given.max_k, given.default_k, given.fast_path) == (20, 15, False)
    assert (absent.max_basket, absent.access_log, absent.verify) == (11, False, False)
    assert (absent.max_k, absent.default_k, absent.fast_path) == (20, 15, False)


def test_serve_options_apply_before_the_variables_are_checked(started, monkeypatch):
    monkeypatch.setenv("BASKETRY_DEFAULT_K", "60")  # > the default max_k 50: bad on its own
    result = runner.invoke(app, ["serve", "--max-k", "100"])
    assert result.exit_code == 0, result.output
    [(settings, _)] = started
    assert (settings.max_k, settings.default_k) == (100, 60)


@pytest.mark.parametrize(("env", "args", "needle"), [
    ({}, ["--default-k", "60"], "BASKETRY_DEFAULT_K must be <= BASKETRY_MAX_K"),
    ({"BASKETRY_MAX_K": "10"}, ["--default-k", "20"], "BASKETRY_DEFAULT_K"),
    ({"BASKETRY_DEFAULT_K": "60"}, ["--max-k", "40"], "BASKETRY_DEFAULT_K"),
    ({}, ["--max-basket", "0"], "BASKETRY_MAX_BASKET must be >= 1"),
    ({}, ["--max-body-bytes", "-1"], "BASKETRY_MAX_BODY_BYTES"),
    ({}, ["--keep-alive", "0"], "BASKETRY_KEEP_ALIVE must be a number of seconds > 0"),
])
def test_bad_serve_settings_exit_2_naming_the_setting(started, monkeypatch, env, args, needle):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert started == []  # uvicorn never started


def test_version_and_short_help():
    import basketry

    for flag in ("--version", "-V"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0
        assert result.output.strip() == f"basketry {basketry.__version__}"
    for argv in (["-h"], ["mine", "-h"], ["monitor", "watch", "-h"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0 and "Usage:" in result.output, argv
