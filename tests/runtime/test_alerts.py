"""Alerts go to the log, the trace and webhooks; a webhook that is down or slow never
holds up the caller. Receivers are real HTTP servers on 127.0.0.1."""

import json
import socket
import time

import pytest

from planarpy.core.errors import ConfigError
from planarpy.modes.runtime.alerts import AlertConfig, Alerts

from hookkit import Receiver
from livekit import eventually

SECRET = "s3cr3t-api-secret-value"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def down_url() -> str:
    """A port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def alerts(*urls: str, **config) -> tuple[Alerts, list]:
    recorded: list = []
    a = Alerts(AlertConfig(webhooks=urls, **config), {"strategy": "S", "mode": "live",
                                                     "exchange": "binance"},
               record=lambda kind, body: recorded.append((kind, body)), secrets=(SECRET,))
    return a, recorded


def test_an_alert_is_logged_recorded_and_posted(receiver, caplog):
    a, recorded = alerts(receiver.url)
    a.send("halt", "trading HALTED", {"rule": "max_drawdown"})
    eventually(lambda: receiver.bodies)
    (body,) = receiver.bodies
    assert body["kind"] == "halt" and body["strategy"] == "S" and body["details"]["rule"] == \
        "max_drawdown"
    assert recorded == [("alert", body)]
    assert "trading HALTED" in caplog.text
    a.close()


def test_no_secret_reaches_the_body_or_the_log(receiver, caplog):
    a, recorded = alerts(receiver.url)
    a.send("reconciliation", f"failed with key {SECRET}", {"url": f"x?signature={'a' * 64}",
                                                           "note": SECRET})
    eventually(lambda: receiver.bodies)
    text = json.dumps(receiver.bodies) + json.dumps(recorded) + caplog.text
    assert SECRET not in text and "a" * 64 not in text
    a.close()


def test_a_failed_post_is_retried(receiver):
    receiver.fail = 2
    a, _ = alerts(receiver.url, retries=2)
    a.send("risk", "tripped")
    # `sent` counts once the sender has the answer, a moment after the receiver has the body
    eventually(lambda: a.sent == 1)
    assert len(receiver.bodies) == 1 and a.failed == 0
    a.close()


@pytest.mark.parametrize("how", ["down", "slow"])
def test_a_receiver_down_or_slow_does_not_hold_up_the_caller(how, caplog):
    slow = Receiver(delay=1.0) if how == "slow" else None
    url = slow.url if slow else down_url()
    a, recorded = alerts(url, timeout=0.5, retries=2)
    took = []
    for i in range(20):
        began = time.perf_counter()
        a.send("shadow", f"alert {i}")
        took.append(time.perf_counter() - began)
    # a send that waited for its POST would take the 0.5 s timeout (slow), or the pauses
    # of 0.1 and 0.2 s between a refused connection's tries (down): at least 0.3 s; the
    # bound leaves room for a busy machine's scheduling
    assert max(took) < 0.25
    assert len(recorded) == 20  # the trace has each at once, whatever the webhook does
    if how == "down":
        eventually(lambda: a.failed >= 1, timeout=5)
        assert "127.0.0.1" in caplog.text and "/hook" not in caplog.text  # no URL path logged
    a.close(timeout=0.1)
    if slow:
        slow.close()


@pytest.mark.parametrize("table, message", [
    ({"webhooks": "http://x"}, r"\[alerts\] webhooks must be a list of http\(s\) URLs"),
    ({"webhooks": ["ftp://x"]}, r"\[alerts\] webhooks must be a list"),
    ({"timeout": 0}, r"\[alerts\] timeout must be"),
    ({"retries": 99}, r"\[alerts\] retries must be"),
    ({"hooks": []}, r"\[alerts\] has unknown key\(s\) hooks"),
])
def test_bad_alert_config_is_refused(table, message):
    with pytest.raises(ConfigError, match=message):
        AlertConfig.from_config(table)
