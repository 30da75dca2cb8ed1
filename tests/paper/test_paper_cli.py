"""`planarpy paper`: status lines, --cash, --duration, and a clean stop on SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from planarpy.cli.main import build_parser
from planarpy.trace import trace_tail

from prockit import Child

STRATEGY = ("from planarpy import Strategy\n"
            "class Idle(Strategy):\n"
            "    exchange = 'binance'\n    quote = 'ETH'\n"
            "    timeframe = '1m'\n    universe = ('XRP/ETH',)\n")


def command(lx, tmp_path, *extra):
    strategy = tmp_path / "idle.py"
    strategy.write_text(STRATEGY)
    return [sys.executable, "-m", "planarpy.cli.main", "paper", str(strategy),
            "--exchange-url", lx.url, "--tick-interval", "0.1", "--status-every", "0.2", *extra]


RESTING = STRATEGY + ("    def start(self):\n"
                      "        from planarpy import call\n"
                      "        call(self, 'limit_order', 'XRP/ETH', 100.0, 0.0005, side='buy')\n")


def test_paper_sigterm_cancels_as_planar_toml_says(lx, tmp_path):
    """SIGTERM stops a paper run like Ctrl-C; [paper] on_stop = "cancel" cancels its
    resting order, and the trace's last event says nothing was left open."""
    (tmp_path / "idle.py").write_text(RESTING)
    (tmp_path / "planar.toml").write_text('[paper]\non_stop = "cancel"\n')
    child = Child(["paper", str(tmp_path / "idle.py"), "--exchange-url", lx.url,
                   "--status-every", "0.2", "--config", str(tmp_path / "planar.toml"),
                   "--trace-dir", str(tmp_path / "traces")], tmp_path)
    try:
        child.wait_for("orders 1")
        child.signal(signal.SIGTERM)
        assert child.finish() == 0, child.text
    finally:
        child.kill()
    assert "stopping... (SIGTERM; on_stop = cancel)" in child.text
    events = trace_tail(tmp_path / "traces" / "Idle" / "binance", n=1000)
    assert [e["payload"]["status"] for e in events if e["kind"] == "order_closed"] == ["canceled"]
    assert events[-1]["kind"] == "strategy_stopped"
    assert events[-1]["payload"]["still_open"] == [] and events[-1]["payload"]["reason"] == "SIGTERM"


def test_paper_command_stops_cleanly_on_sigint(lx, tmp_path):
    """`planarpy paper` prints status lines; SIGINT stops it and flushes its trace."""
    proc = subprocess.Popen(command(lx, tmp_path, "--trace-dir", str(tmp_path / "traces")),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 20
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if "paper equity" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    err = "".join(lines) + err
    assert proc.returncode == 0, err
    assert "Idle paper equity 100 ETH" in err and "stopping..." in err
    events = trace_tail(tmp_path / "traces" / "Idle" / "binance", n=1000)
    kinds = [e["kind"] for e in events]
    assert kinds[-1] == "strategy_stopped" and "strategy_started" in kinds


def test_paper_command_cash_duration_no_trace(lx, tmp_path):
    """--cash sets the starting cash, --duration ends the run, --no-trace writes nothing."""
    out = subprocess.run(command(lx, tmp_path, "--cash", "2.5", "--duration", "0.5", "--no-trace"),
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "paper equity 2.5 ETH" in out.stderr
    assert not (tmp_path / "traces").exists()


def test_paper_command_is_registered():
    args = build_parser().parse_args(["paper", "x", "--cash", "3", "--no-trace"])
    assert args.mode == "paper" and args.cash == 3.0 and args.no_trace


def test_paper_command_params_go_to_the_run_header(lx, tmp_path):
    """`-p name=value` sets a parameter; the trace's run header records the values used."""
    strategy = tmp_path / "tuned.py"
    strategy.write_text(STRATEGY.replace("class Idle", "from planarpy import Param\nclass Idle")
                        + "    size = Param(2, low=1, high=9)\n")
    out = subprocess.run([sys.executable, "-m", "planarpy.cli.main", "paper", str(strategy),
                          "--exchange-url", lx.url, "--tick-interval", "0.1", "--duration", "0.3",
                          "--trace-dir", str(tmp_path / "traces"), "-p", "size=7"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    started = trace_tail(tmp_path / "traces" / "Idle" / "binance", kinds="strategy_started")
    assert started[-1]["payload"]["params"] == {"size": 7}


def test_paper_command_shows_the_risk_rules_in_force(lx, tmp_path):
    """The rules a run trades under are on its first line and in its summary, with what
    they did; a strategy table whose name is close to the strategy's, a likely typo whose
    rules do not apply, is warned of (it was ignored silently)."""
    (tmp_path / "planar.toml").write_text("[risk]\nmax_open_orders = 5\n"
                                          "[risk.Idel]\nmax_order_notional = 1.0\n")
    out = subprocess.run(command(lx, tmp_path, "--duration", "0.3", "--no-trace",
                                 "--config", str(tmp_path / "planar.toml")),
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "(on_stop = keep; risk rules: max_open_orders=5); Ctrl-C stops it" in out.stderr
    assert "[risk.Idel] does not apply to Idle (a strategy's table is named after its class " \
           "exactly): if it was meant for it, name it [risk.Idle]" in out.stderr
    summary = dict(line.split(None, 1) if " " in line else (line, "")
                   for line in out.stdout.replace("risk rules", "risk_rules")
                   .replace("risk denied", "risk_denied").splitlines())
    assert summary["risk_rules"].strip() == "max_open_orders=5"
    assert summary["trading"].strip() == "active throughout: no risk rule tripped"
    assert summary["risk_denied"].strip() == "0 orders"
