"""`planarpy paper` ends with a summary like sim's: PnL, fills, fees, what is open."""

from __future__ import annotations

import subprocess
import sys

STRATEGY = ("from planarpy import Strategy, call\n"
            "class Buyer(Strategy):\n"
            "    exchange = 'binance'\n    quote = 'ETH'\n"
            "    timeframe = '1m'\n    universe = ('XRP/ETH',)\n"
            "    def start(self):\n"
            "        call(self, 'market_order', 'XRP/ETH', 100.0, side='buy')\n")


def test_paper_command_prints_the_run_summary(lx, tmp_path):
    (tmp_path / "buyer.py").write_text(STRATEGY)
    out = subprocess.run([sys.executable, "-m", "planarpy.cli.main", "paper", "buyer.py",
                          "--exchange-url", lx.url, "--duration", "0.5", "--no-trace"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(None, 1) for line in out.stdout.splitlines())
    assert lines["strategy"] == "Buyer (paper)" and lines["fills"] == "1"
    assert lines["open"] == "nothing" and lines["fees"].startswith("paid ")
    assert " ETH (" in lines["pnl"] and "e-" not in lines["equity"]
