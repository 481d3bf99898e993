"""The alert webhook against a real HTTP receiver on 127.0.0.1: delivery, retries, a refused
connection, a receiver that hangs, a full queue; and the settings that configure it."""

from __future__ import annotations

import logging

import pytest

from basketry.monitoring.alert_settings import AlertSettings, safe_url
from basketry.monitoring.settings import MonitorSettingsError
from basketry.monitoring.webhook import Webhook
from tests.monitoring.receiver import Receiver, refused_url


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(*args, **kwargs) -> Receiver:
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def hooks():
    made: list[Webhook] = []

    def make(*args, **kwargs) -> Webhook:
        made.append(Webhook(*args, **kwargs))
        return made[-1]

    yield make
    for h in made:
        h.close(timeout=2)


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "basketry.monitoring.webhook" and r.levelno >= logging.WARNING]


def test_a_payload_is_posted_as_json(receivers, hooks, caplog):
    receiver = receivers()
    results = []
    hook = hooks(receiver.url, on_result=lambda key, ok: results.append((key, ok)))
    assert hook.send({"event": "opened", "alert": {"id": 1}}, key=(1, "opened"))
    assert hook.flush(10)
    assert receiver.payloads == [{"event": "opened", "alert": {"id": 1}}]
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert results == [((1, "opened"), True)]
    assert hook.counts() == {"delivered": 1, "failed": 0, "dropped": 0, "retries": 0,
                             "queue_depth": 0}
    assert warnings_of(caplog) == []


def test_a_server_error_is_retried_until_it_is_delivered(receivers, hooks, caplog):
    receiver = receivers([500, 503])
    hook = hooks(receiver.url, retries=3, backoff=0.01)
    hook.send({"n": 1})
    assert hook.flush(10)
    assert receiver.payloads == [{"n": 1}] * 3
    counts = hook.counts()
    assert (counts["delivered"], counts["failed"], counts["retries"]) == (1, 0, 2)
    assert warnings_of(caplog) == []


def test_a_client_error_is_final(receivers, hooks, caplog):
    receiver = receivers([400])
    results = []
    hook = hooks(receiver.url, retries=3, backoff=0.01,
                 on_result=lambda key, ok: results.append(ok))
    hook.send({"n": 1}, what="alert 7 (opened)")
    assert hook.flush(10)
    assert len(receiver.bodies) == 1
    assert results == [False]
    [line] = warnings_of(caplog)
    assert "gave up on alert 7 (opened) after 1 attempt: the receiver answered HTTP 400" in line


def test_a_refused_connection_is_one_clear_line_counted_and_the_caller_goes_on(hooks, caplog):
    url = refused_url("/hooks/s3cr3t-token")
    results = []
    hook = hooks(url, retries=2, backoff=0.01, on_result=lambda key, ok: results.append(ok))
    assert hook.send({"n": 1}, what="alert 3 (opened)") is True  # queued, not waited for
    assert hook.flush(10)
    counts = hook.counts()
    assert (counts["delivered"], counts["failed"], counts["retries"]) == (0, 1, 2)
    assert results == [False]
    [line] = warnings_of(caplog)
    assert "alert 3 (opened) after 3 attempts: connection refused" in line
    assert "stays in the store" in line
    assert "s3cr3t" not in caplog.text  # the URL's token is never logged
    assert "/…" in line


def test_behind_a_receiver_down_the_next_deliveries_try_once_until_one_succeeds(receivers,
                                                                                 hooks, caplog):
    hook = hooks(refused_url(), retries=2, backoff=0.01)
    for i in range(3):
        hook.send({"n": i}, what=f"alert {i} (opened)")
    assert hook.flush(10)
    counts = hook.counts()
    assert (counts["failed"], counts["retries"]) == (3, 2)  # 3 attempts, then 1 and 1
    lines = warnings_of(caplog)
    assert [line.split(": ", 1)[1].split(" after ")[1][:10] for line in lines] == [
        "3 attempts", "1 attempt:", "1 attempt:"]
    assert "one attempt each until a delivery succeeds" in lines[1]
    # the receiver is back: the first success restores the retries
    receiver = receivers([500])
    hook.url = receiver.url
    hook.send({"n": 3})
    hook.send({"n": 4})
    assert hook.flush(10)
    assert hook.counts()["failed"] == 4  # the 500 was the one attempt of the first
    receiver.statuses = [500]
    hook.send({"n": 5})
    assert hook.flush(10)
    assert hook.counts()["delivered"] == 2 and hook.counts()["retries"] == 3


def test_a_receiver_that_hangs_times_out_and_never_holds_up_the_caller(receivers, hooks,
                                                                        caplog):
    receiver = receivers(hang=True)
    hook = hooks(receiver.url, timeout=0.3, retries=0)
    assert hook.send({"n": 1}, what="alert 1 (opened)")
    # send returned while the receiver still holds the request: the caller never waits
    assert receiver.entered.wait(10)
    assert not receiver.release.is_set()
    assert hook.flush(10)
    assert hook.counts()["failed"] == 1
    [line] = warnings_of(caplog)
    assert "after 1 attempt: no answer within 0.3 s" in line


def test_a_full_queue_drops_counts_and_says_so_once(receivers, hooks, caplog):
    receiver = receivers(hang=True)
    hook = hooks(receiver.url, timeout=10, retries=0, queue_size=1)
    assert hook.send({"n": 1})
    assert receiver.entered.wait(10)  # the first is being delivered, the queue is empty
    assert hook.send({"n": 2})
    assert hook.send({"n": 3}) is False
    assert hook.send({"n": 4}) is False
    assert hook.counts()["dropped"] == 2
    drops = [line for line in warnings_of(caplog) if "dropped" in line]
    assert len(drops) == 1 and "stays in the store" in drops[0]
    receiver.release.set()
    assert hook.flush(10)
    assert sorted(p["n"] for p in receiver.payloads) == [1, 2]
    assert hook.counts()["delivered"] == 2


def test_a_failing_result_hook_does_not_stop_the_deliveries(receivers, hooks, caplog):
    receiver = receivers()

    def broken(key, ok):
        raise RuntimeError("store down")

    hook = hooks(receiver.url, on_result=broken)
    hook.send({"n": 1}, what="alert 1 (opened)")
    hook.send({"n": 2}, what="alert 2 (opened)")
    assert hook.flush(10)
    assert len(receiver.bodies) == 2
    assert sum("could not record the delivery" in line for line in warnings_of(caplog)) == 2


def test_close_cuts_the_retries_short_and_send_after_close_drops(hooks, caplog):
    hook = hooks(refused_url(), retries=5, backoff=30)
    hook.send({"n": 1})
    hook.close(timeout=0.2)
    assert hook.counts()["failed"] == 1
    assert any("closing: no more attempts" in line for line in warnings_of(caplog))
    assert hook.send({"n": 2}, what="alert 2 (opened)") is False
    assert hook.counts()["dropped"] == 1
    assert any("it is closed; alert 2 (opened) dropped" in line
               for line in warnings_of(caplog))


# -- settings --------------------------------------------------------------------------------

def test_settings_from_the_environment():
    s = AlertSettings.from_env({
        "BASKETRY_MONITOR_WEBHOOK_URL": "https://hooks.example.com/services/T0/B0/xyz",
        "BASKETRY_MONITOR_WEBHOOK_TIMEOUT": "2.5", "BASKETRY_MONITOR_WEBHOOK_RETRIES": "0",
        "BASKETRY_ALERT_DETECTORS": "items_orders, rule_confidence",
        "BASKETRY_ALERT_MIN_QUERIES": "50", "BASKETRY_ALERT_CLEAR_AFTER": "3"})
    assert (s.webhook_timeout, s.webhook_retries, s.min_queries) == (2.5, 0, 50)
    assert s.clear_after == 3
    assert s.detector_set == {"items_orders", "rule_confidence"}
    assert s.public()["webhook_url"] == "https://hooks.example.com/…"
    hook = Webhook.from_settings(s)
    assert hook is not None and (hook.timeout, hook.retries) == (2.5, 0)
    assert Webhook.from_settings(AlertSettings.from_env({})) is None


@pytest.mark.parametrize(("env", "named"), [
    ({"BASKETRY_MONITOR_WEBHOOK_URL": "ftp://example.com/x"}, "BASKETRY_MONITOR_WEBHOOK_URL"),
    ({"BASKETRY_MONITOR_WEBHOOK_URL": "hooks.example.com"}, "BASKETRY_MONITOR_WEBHOOK_URL"),
    ({"BASKETRY_MONITOR_WEBHOOK_TIMEOUT": "0"}, "BASKETRY_MONITOR_WEBHOOK_TIMEOUT"),
    ({"BASKETRY_MONITOR_WEBHOOK_RETRIES": "many"}, "BASKETRY_MONITOR_WEBHOOK_RETRIES"),
    ({"BASKETRY_MONITOR_WEBHOOK_QUEUE": "0"}, "BASKETRY_MONITOR_WEBHOOK_QUEUE"),
    ({"BASKETRY_ALERT_CLEAR_AFTER": "0"}, "BASKETRY_ALERT_CLEAR_AFTER"),
    ({"BASKETRY_ALERT_DETECTORS": "items_orders,psychic"}, "psychic"),
    ({"BASKETRY_ALERT_DRIFT_SEVERITY": "apocalyptic"}, "BASKETRY_ALERT_DRIFT_SEVERITY"),
])
def test_bad_settings_are_one_line_naming_the_variable(env, named):
    with pytest.raises(MonitorSettingsError, match=named) as info:
        AlertSettings.from_env(env)
    assert "\n" not in str(info.value)


def test_safe_url_keeps_scheme_and_host_only():
    assert safe_url("http://user:pw@127.0.0.1:8080/a/b?token=x") == "http://127.0.0.1:8080/…"
    assert safe_url("https://example.com") == "https://example.com"
    assert safe_url("not a url") == "<an unparsable URL>"
