"""Keys never leak; the `planarpy live` command stops cleanly on SIGINT."""

import io
import logging
import re
import signal
from pathlib import Path

import pytest

from planarpy.exchanges import ApiKeys, exchange_config, load_keys
from planarpy.trace import EventTrace, trace_tail

from livekit import Quiet, QuietPerp, eventually, live
from prockit import Child

SYM = "XRP/ETH"
PERP = "XRP/USDT:USDT"


def scan(root: Path, *needles: str) -> list[str]:
    """Files under `root` whose bytes contain any of `needles`."""
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            hits += [f"{p}: {n[:4]}..." for n in needles if n.encode() in data]
    return hits


def test_keys_never_reach_trace_logs_or_reprs(local_exchange, tmp_path, caplog):
    """With keys configured, neither key nor secret is in the trace, the logs or any repr."""
    lx = local_exchange
    lx.step(3_600_000)
    keys = ApiKeys(lx.api_key, lx.secret)
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance",
                         redact=[keys.api_key, keys.secret]) as trace:
        with live(lx, trace=trace) as run:
            run.call("market_order", SYM, 100.0, side="buy")
            lx.faults.update({"http_status": 500, "http_count": 2})
            run.call("market_order", SYM, 100.0, side="buy", waitfor=1)
            text = repr(run) + repr(run.session.keys) + run.status() + " ".join(run.session.errors)
    assert lx.api_key not in text and lx.secret not in text
    assert lx.api_key not in caplog.text and lx.secret not in caplog.text
    assert scan(tmp_path, lx.api_key, lx.secret) == []
    assert trace_tail(tmp_path / "t", n=5, kinds=["request_sent"])  # the trace did record


def test_key_files_and_environment(tmp_path, monkeypatch):
    """Keys load from user/keys/NAME.toml or PLANARPY_NAME_* variables; bad files say so."""
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / "binance.toml").write_text('apiKey = "k1"\nsecret = "s1"\n')
    assert load_keys("binance", keys_dir) == ApiKeys("k1", "s1")
    monkeypatch.setenv("PLANARPY_BINANCE_API_KEY", "k2")
    monkeypatch.setenv("PLANARPY_BINANCE_SECRET", "s2")
    assert load_keys("binance", keys_dir).api_key == "k2"
    (keys_dir / "bad.toml").write_text('apiKey = "oops-secret-value\n')
    import pytest
    from planarpy import ConfigError
    with pytest.raises(ConfigError) as e:
        load_keys("bad", keys_dir)
    assert "oops-secret-value" not in str(e.value) and "bad.toml is not valid TOML" in str(e.value)
    with pytest.raises(ConfigError, match=r"must be an http\(s\) URL like http://host:port"):
        exchange_config("binance", {}, url="127.0.0.1:80")


def test_live_command_stops_cleanly_on_sigint(local_exchange, tmp_path):
    """`planarpy live` prints status lines, and SIGINT, sent once it runs (its first status
    line, not a guessed time), stops it and flushes its trace."""
    lx = local_exchange
    lx.step(3_600_000)
    strategy = tmp_path / "quiet.py"
    strategy.write_text("from planarpy import Strategy\n"
                        "class Quiet(Strategy):\n"
                        "    exchange = 'binance'\n    quote = 'ETH'\n"
                        "    timeframe = '1m'\n    universe = ('XRP/ETH',)\n")
    env = {"PLANARPY_BINANCE_API_KEY": lx.api_key, "PLANARPY_BINANCE_SECRET": lx.secret}
    child = Child(["live", str(strategy), "--exchange-url", lx.url, "--tick-interval", "0.2",
                   "--status-every", "0.2", "--trace-dir", str(tmp_path / "traces")],
                  tmp_path, env)
    try:
        child.wait_for("equity")
        child.signal(signal.SIGINT)
        assert child.finish(timeout=30) == 0, child.text
    finally:
        child.kill()
    assert "stopping..." in child.text
    assert lx.api_key not in child.text and lx.secret not in child.text
    kinds = [e["kind"] for e in trace_tail(tmp_path / "traces" / "Quiet" / "binance", n=3)]
    assert kinds[-1] == "strategy_stopped"

HMAC_HEX = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")  # an HMAC-SHA256


def leaks(text: str, lx) -> list[str]:
    """Credentials in `text`: the key, the secret, a listen key, a signature."""
    found = [name for name, v in (("api key", lx.api_key), ("secret", lx.secret)) if v in text]
    found += ["listen key" for k in list(lx.hub.listen_keys) if k in text]
    found += [f"signature {m[:6]}..." for m in HMAC_HEX.findall(text)]
    found += [f"signature= {m[:6]}..." for m in re.findall(r"signature=([^*&\s'\"]{8,})", text)]
    return found


def test_a_debug_session_shows_no_credentials(local_exchange, tmp_path):
    """Root logging at DEBUG, one handler set before the runs and one added while they
    run: ccxt's request logs, a spot and a futures run (listen key) with orders, 5xx
    errors, a failed reconcile; neither the logs, the trace, the reprs nor any error
    message holds the key, the secret, a signature or a listen key."""
    lx = local_exchange
    lx.step(3_600_000)
    root = logging.getLogger()
    before, late = io.StringIO(), io.StringIO()
    first, second = logging.StreamHandler(before), logging.StreamHandler(late)
    level = root.level
    root.addHandler(first)
    root.setLevel(logging.DEBUG)
    texts = []
    try:
        for cls, sym, price in ((Quiet, SYM, 0.0005), (QuietPerp, PERP, 0.3)):
            trace = EventTrace.open(tmp_path / cls.__name__, strategy=cls.__name__,
                                    exchange=cls.exchange)
            with live(lx, cls, trace=trace) as run:
                root.addHandler(second)  # a handler added after the clients exist
                run.call("limit_order", sym, 100.0, price, side="buy", waitfor=0.5)
                lx.faults.update({"http_status": 503, "http_count": 3})
                run.call("market_order", sym, 100.0, side="buy", waitfor=1)
                lx.faults.update({"http_status": 503})
                for action in (run.reconcile, lambda: run.call("watch_ohlcv")):
                    try:
                        action()
                    except Exception as e:
                        texts.append(f"{type(e).__name__}: {e}")
                lx.faults.clear()
                texts += [repr(run), repr(run.session.keys), run.status(),
                          *run.session.errors, *map(str, run.strategy.seen_errors)]
                run.call("cancel_orders", sym)
    finally:
        root.removeHandler(first)
        root.removeHandler(second)
        root.setLevel(level)
    assert lx.hub.listen_keys, "the futures run used a listen key"
    assert "Request:" in before.getvalue() and "Request:" in late.getvalue()  # ccxt did log
    assert "signature=***" in before.getvalue()
    assert leaks(before.getvalue(), lx) == [] and leaks(late.getvalue(), lx) == []
    assert leaks("\n".join(texts), lx) == []
    assert any("503" in t for t in texts)
    assert scan(tmp_path, lx.api_key, lx.secret, *lx.hub.listen_keys) == []
    trace_text = "\n".join(str(e) for name in ("Quiet", "QuietPerp")
                           for e in trace_tail(tmp_path / name, n=100_000))
    assert leaks(trace_text, lx) == [] and "exchange_error" in trace_text


def test_exchange_errors_reach_the_caller_without_credentials(local_exchange):
    """During an outage reconcile() raises a planarpy error with the signed URL redacted
    (not ccxt's raw one), and call(s, "watch_ohlcv") returns False and tells on_error."""
    from planarpy.core.errors import ExchangeRequestError
    lx = local_exchange
    lx.step(3_600_000)
    with live(lx) as run:
        lx.faults.update({"http_status": 503})
        with pytest.raises(ExchangeRequestError) as e:
            run.reconcile()
        message = str(e.value)
        assert "503" in message and "signature=***" in message and leaks(message, lx) == []
        assert e.value.__cause__ is None and e.value.__context__ is None
        assert run.call("watch_ohlcv") is False
        eventually(lambda: any(w == "watch_ohlcv" for w, _ in run.strategy.seen_errors))
        lx.faults.clear()
        assert run.call("watch_ohlcv") is True and run.reconcile() == []
