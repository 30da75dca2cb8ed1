"""bench/sim.py compares the sim with a hand-written loop making the example's trades: the
ratio it prints means something only if that loop makes the very same trades."""

import importlib.util
from pathlib import Path

from planarpy import backtest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sim.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_sim", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_hand_written_peer_makes_the_same_trades_as_the_sim():
    b = _bench()
    data = b.generated_candles(30_000, seed=3)
    r = backtest(b.load_example(), data={"ETH/BTC": data}, config=b.CONFIG, settings={})
    _, fills, cash = b.hand_loop(data)
    assert len(r.trades) > 500  # enough crosses to mean something
    assert fills == len(r.trades)
    assert cash == r.strategy.engine.state.cash  # to the bit: the same prices, amounts, fees
