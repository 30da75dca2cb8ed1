"""Keys never leak; the `planarpy live` command stops cleanly on SIGINT."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from planarpy.exchanges import ApiKeys, exchange_config, load_keys
from planarpy.trace import EventTrace, trace_tail

from livekit import live

SYM = "XRP/ETH"


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
    with pytest.raises(ConfigError, match="must look like http://host:port"):
        exchange_config("binance", {}, url="127.0.0.1:80")


def test_live_command_stops_cleanly_on_sigint(local_exchange, tmp_path, repo_root):
    """`planarpy live` prints status lines, and SIGINT stops it and flushes its trace."""
    lx = local_exchange
    lx.step(3_600_000)
    strategy = tmp_path / "quiet.py"
    strategy.write_text("from planarpy import Strategy\n"
                        "class Quiet(Strategy):\n"
                        "    exchange = 'binance'\n    quote = 'ETH'\n"
                        "    timeframe = '1m'\n    universe = ('XRP/ETH',)\n")
    env = dict(os.environ, PLANARPY_BINANCE_API_KEY=lx.api_key, PLANARPY_BINANCE_SECRET=lx.secret)
    proc = subprocess.Popen(
        [sys.executable, "-m", "planarpy.cli.main", "live", str(strategy), "--exchange-url", lx.url,
         "--tick-interval", "0.2", "--status-every", "0.2", "--trace-dir", str(tmp_path / "traces")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "equity" in err and "stopping..." in err
    assert lx.api_key not in err + out and lx.secret not in err + out
    kinds = [e["kind"] for e in trace_tail(tmp_path / "traces" / "Quiet" / "binance", n=3)]
    assert kinds[-1] == "strategy_stopped"
