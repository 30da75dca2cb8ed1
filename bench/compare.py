"""Candles per second of planarpy against backtesting.py (and backtrader) on one SMA cross.

One strategy (long-only SMA 10/30 cross, all cash in whole units, next-open market
fills, 0.02% commission; tests/kit/paritykit.py, whose trades tests/parity checks
against backtesting.py) on one random walk of one-minute candles. backtesting.py and
backtrader are slow on a million candles, so they run on the first `--peer-candles`
and planarpy runs on those too (the like-for-like ratio) and on all `--candles`.
Each run includes what the framework computes after its loop (planarpy: stats()).
Like for like, planarpy runs without its look-ahead check (SimConfig.check_lookahead: after
the run it backtests again, each tick blind to later candles; backtesting.py checks
nothing of the kind); the ratio with the check on is printed too.
Times are CPU time of this process, best of --repeat (the machine may be shared); the
like-for-like runs are taken in turn, so the headline ratio sees one load (a planarpy run
of 100k candles lasts 0.06 s: nine tries each by default). The first line printed is the
headline: the like-for-like ratio to backtesting.py.
Prints figures only. Run: python bench/compare.py [--candles N] [--peer-candles N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "kit"))

from planarpy import OHLCV  # noqa: E402
from paritykit import FAST, SLOW, run_bt, run_planar, stock, to_frame  # noqa: E402

CASH = 100_000_000.0
COMMISSION = 0.0002  # low enough that thousands of round trips do not eat the cash
MARKET = stock("RW/USD", COMMISSION)


def random_walk(n: int, seed: int = 1) -> OHLCV:
    """`n` one-minute candles of a random walk around 100 on a cent grid."""
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.001, n))), 2)
    open_ = np.r_[close[0], close[:-1]]
    spread = np.round(np.abs(rng.normal(0, 0.05, n)), 2)
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    ts = 1_600_000_000_000 + 60_000 * np.arange(n, dtype=np.int64)
    return OHLCV(ts, open_, high, low, close, rng.uniform(500, 5000, n))


REPEAT = 3


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    """Best CPU time of REPEAT calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(REPEAT):
        t = time.process_time()
        out = fn(*args)
        best = min(best, time.process_time() - t)
    return best, out


def interleaved(runs: list[Any], rounds: int) -> list[tuple[float, Any]]:
    """Best CPU time of each call in `runs` and its last result, the calls taken in turn
    `rounds` times, so that the ratios between them see the same load on a shared
    machine (and each the same number of tries)."""
    best, out = [float("inf")] * len(runs), [None] * len(runs)
    for _ in range(rounds):
        for k, fn in enumerate(runs):
            t = time.process_time()
            out[k] = fn()
            best[k] = min(best[k], time.process_time() - t)
    return list(zip(best, out))


def planar_go(data: OHLCV, fast: int = FAST, slow: int = SLOW, check: bool = False) -> Any:
    """planarpy's run (stats() included) as a call; `check` turns the look-ahead check on."""
    def go() -> Any:
        r = run_planar(data, MARKET, CASH, COMMISSION, "1m", fast, slow, check_lookahead=check)
        r.stats()
        return r
    return go


def planar_trips(r: Any) -> list[tuple]:
    return [(t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.amount)
            for t in r.round_trips()]


def planar(data: OHLCV, fast: int = FAST, slow: int = SLOW,
           check: bool = False) -> tuple[float, list[tuple]]:
    """Best CPU time of planarpy's run (stats() included), and its round trips; `check`
    turns the look-ahead check on."""
    seconds, r = timed(planar_go(data, fast, slow, check))
    return seconds, planar_trips(r)


def bt_go(data: OHLCV, fast: int = FAST, slow: int = SLOW) -> Any:
    frame = to_frame(data)
    return lambda: run_bt(frame, CASH, COMMISSION, fast, slow)


def bt_trips(stats: Any) -> list[tuple]:
    t = stats._trades
    ms = lambda col: (col.to_numpy().astype("datetime64[ms]").astype(np.int64)).tolist()
    return list(zip(ms(t.EntryTime), ms(t.ExitTime), t.EntryPrice, t.ExitPrice,
                    t.Size.astype(float)))


def backtesting_py(data: OHLCV, fast: int = FAST, slow: int = SLOW) -> tuple[float, list[tuple]]:
    seconds, stats = timed(bt_go(data, fast, slow))
    return seconds, bt_trips(stats)


def backtrader_run(data: OHLCV, fast: int = FAST, slow: int = SLOW) -> tuple[float, int] | None:
    """The same cross in backtrader (95% of cash at the close: its sizers cannot see the
    fill price), or None when backtrader is not installed."""
    try:
        import backtrader as bt
    except ImportError:
        return None

    class Cross(bt.Strategy):
        def __init__(self) -> None:
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=fast), bt.ind.SMA(period=slow))
            self.trips = 0

        def next(self) -> None:
            if self.cross[0] > 0 and not self.position:
                self.buy(size=int(self.broker.getcash() * 0.95 / self.data.close[0]))
            elif self.cross[0] < 0 and self.position:
                self.close()

        def notify_trade(self, trade: Any) -> None:
            self.trips += trade.isclosed

    def go() -> int:
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=to_frame(data)))
        cerebro.addstrategy(Cross)
        cerebro.broker.setcash(CASH)
        cerebro.broker.setcommission(commission=COMMISSION)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cerebro.run()[0].trips
    t = time.process_time()
    trips = go()
    return time.process_time() - t, trips


def row(name: str, n: int, seconds: float, trips: int, note: str = "") -> str:
    return f"{name:<15}{n:>11,}{seconds:>10.2f}{n / seconds:>14,.0f}{trips:>13,}  {note}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=1_000_000)
    ap.add_argument("--peer-candles", type=int, default=100_000)
    ap.add_argument("--fast", type=int, default=FAST, help="fast SMA (default %(default)s)")
    ap.add_argument("--slow", type=int, default=SLOW, help="slow SMA (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=9, help="best of (default %(default)s)")
    args = ap.parse_args()
    global REPEAT
    REPEAT = args.repeat
    fast, slow = args.fast, args.slow
    full = random_walk(args.candles)
    peer = full[: min(args.peer_candles, args.candles)]
    warm = full[:2_000]  # first runs pay for imports and caches: not timed
    planar(warm), planar(warm, check=True), backtesting_py(warm), backtrader_run(warm)
    (p_s, p_r), (c_s, c_r), (b_s, b_r) = interleaved(
        [planar_go(peer, fast, slow), planar_go(peer, fast, slow, check=True),
         bt_go(peer, fast, slow)], REPEAT)
    p_trades, c_trades, b_trades = planar_trips(p_r), planar_trips(c_r), bt_trips(b_r)
    same = "same trades as planarpy" if b_trades == p_trades else "TRADES DIFFER from planarpy"
    print(f"HEADLINE: planarpy runs SMA({fast}/{slow}) on {len(peer):,} candles "
          f"{b_s / p_s:.1f}x as fast as backtesting.py ({same}; look-ahead check off, as "
          f"backtesting.py has none; target >= 10x)")
    print(f"with planarpy's look-ahead check on (a second, blind run of up to 5,000 ticks): "
          f"{b_s / c_s:.1f}x" + ("" if c_trades == p_trades else " (TRADES DIFFER)"))
    print(f"python {sys.version.split()[0]}; long-only SMA({fast}/{slow}) cross, all cash in "
          f"whole units, next-open fills, {COMMISSION:.2%} commission, random-walk 1m candles; "
          f"CPU seconds, best of {REPEAT} (the like-for-like runs taken in turn)")
    print(f"{'':<15}{'candles':>11}{'seconds':>10}{'candles/s':>14}{'round trips':>13}")
    print(row("planarpy", len(peer), p_s, len(p_trades), "look-ahead check off"))
    print(row("planarpy", len(peer), c_s, len(c_trades), "look-ahead check on"))
    print(row("backtesting.py", len(peer), b_s, len(b_trades), same))
    bt = backtrader_run(peer, fast, slow)
    if bt is None:
        print(f"{'backtrader':<15}not installed (pip install backtrader): skipped")
    else:
        print(row("backtrader", len(peer), bt[0], bt[1], "sized at 95% of cash at the close"))
    f_s, f_trades = planar(full, fast, slow)
    print(row("planarpy", len(full), f_s, len(f_trades), "look-ahead check off"))
    p_rate, f_rate, b_rate = len(peer) / p_s, len(full) / f_s, len(peer) / b_s
    print(f"like for like ({len(peer):,} candles each): planarpy / backtesting.py = "
          f"{p_rate / b_rate:.1f}x")
    print(f"planarpy on {len(full):,} candles / backtesting.py on {len(peer):,}: "
          f"{f_rate / b_rate:.1f}x (rates; the run sizes differ)")
    if bt is not None:
        print(f"like for like: planarpy / backtrader = {p_rate / (len(peer) / bt[0]):.1f}x")


if __name__ == "__main__":
    main()
