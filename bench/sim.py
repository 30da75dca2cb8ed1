"""Candles per second of the sim on one million generated one-minute candles.

Prints, for the same data in the same process: a bare Python loop calling a trivial
function per candle (the floor any Python engine pays), (a) a strategy whose tick does
nothing (and with every risk rule: a strategy that waits, flat at its peak), (b) the spot example (SMA cross) and the cost per fill: over (a), and over (b0),
the same example whose `call` does nothing (the engine's own work per order), (c) the same
example with risk rules switched on (limits it never reaches, so it trades the same),
(e) a hand-written loop making the example's trades (the issue's peer: no engine at all),
and the peak memory of one run of the example in a fresh process.
Run: python bench/sim.py [--candles N] [--repeat R]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import attrs
import numpy as np

from planarpy import OHLCV, RiskRules, Strategy, backtest
from planarpy.actions import Mode
from planarpy.core.orders import Side
from planarpy.core.precision import ceil_to_step, floor_fill, floor_to_step
from planarpy.data.sources import markets_for
from planarpy.indicators import crossings, sma
from planarpy.modes.sim import SimConfig
from planarpy.modes.sim.fills import market_price, volume_fill

# low fees keep the random walk from eating the account, so trades go on all run
CONFIG = SimConfig(seed=1, maker=0.0001, taker=0.0002)
ROOT = Path(__file__).resolve().parent.parent
# every order rule, at limits the example never reaches
ORDER_RULES = RiskRules(max_order_notional=1e9, max_position_notional=1e9, max_open_orders=1000,
                        max_orders_per_second=10_000, max_orders_per_minute=10_000)
# every rule: the order rules, the leverage rule and the breakers (loss 100%: never trips)
ALL_RULES = RiskRules(max_order_notional=1e9, max_position_notional=1e9, max_leverage=1000.0,
                      max_open_orders=1000, max_orders_per_second=10_000,
                      max_orders_per_minute=10_000, max_daily_loss=1.0, max_drawdown=1.0,
                      max_errors_per_minute=10_000)


def generated_candles(n: int, seed: int = 1) -> OHLCV:
    """A random walk of `n` one-minute candles with realistic volume."""
    rng = np.random.default_rng(seed)
    close = 0.05 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.0005, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    del spread
    volume = rng.uniform(500, 5000, n)
    ts = 1_600_000_000_000 + 60_000 * np.arange(n, dtype=np.int64)
    # rounded in place (the same values as .round(8)): the peak memory measured below is
    # the run's, not that of copies made here
    for column in (open_, high, low, close):
        np.round(column, 8, out=column)
    return OHLCV(ts, open_, high, low, close, volume)


class Idle(Strategy):
    exchange = "binance"
    quote = "BTC"
    timeframe = "1m"
    universe = ("ETH/BTC",)
    initial_cash = 1.0

    def tick(self, ts):
        pass


def load_example(send: bool = True):
    """The spot example on 1m candles; with `send` False its `call` does nothing (the same
    tick, its orders never sent: what (b) costs besides the engine's work on orders)."""
    spec = importlib.util.spec_from_file_location("sma_cross", ROOT / "strategies" / "sma_cross.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not send:
        module.call = lambda *args, **kwargs: None
    return type("SmaCross1m", (module.SmaCross,), {"timeframe": "1m"})


class _Bare:
    i = 0

    def tick(self, ts):
        pass


# Times are the CPU time of this process (best of --repeat): on a machine shared with
# other work, wall time measures the neighbours as much as the code.
clock = time.process_time


def bare_loop(n: int) -> float:
    """A loop that sets an index and calls a trivial method per candle: the floor."""
    s = _Bare()
    tick = s.tick
    t = clock()
    for i, ts in zip(range(n), range(0, 60_000 * n, 60_000)):
        s.i = i
        tick(ts)
    return n / (clock() - t)


def hand_loop(data: OHLCV) -> tuple[float, int, float]:
    """The example's trades made by a hand-written loop, the peer the issue names: the
    same signal and indicators, the sim's fill rules (next open moved by slippage, the
    volume cap with the same seed, the price and amount steps, the fee), but no orders,
    events, checks or records. CPU seconds (indicators included), fills and the cash at
    the end (equal to the engine's: the same trades)."""
    s = load_example()(markets_for("binance", {}, None), mode=Mode.SIM)
    m = attrs.evolve(s.assets[0].market, maker=CONFIG.maker, taker=CONFIG.taker)
    rng, slip, invest = random.Random(CONFIG.seed), CONFIG.slippage, s.invest
    price_step, amount_step = m.price_step, m.amount_step
    in_base = [c == m.base for c in m.fee_currencies]  # a buy's fee, a sell's: in the base?
    cash, balance, fills = s.initial_cash, 0.0, 0
    t = clock()
    cross = crossings(sma(data.close, s.fast), sma(data.close, s.slow)).tolist()
    opens, closes, volumes = data.open.tolist(), data.close.tolist(), data.volume.tolist()
    for i in range(max(s.fast, s.slow), len(cross) - 1):
        c = cross[i]
        if not c:
            continue
        buy = c > 0
        if buy and balance < m.min_amount:
            amount = floor_to_step(cash * invest / closes[i], amount_step)
        elif not buy and balance >= m.min_amount:
            amount = floor_to_step(balance, amount_step)
        else:
            continue
        price = market_price(Side.BUY if buy else Side.SELL, opens[i + 1], closes[i], amount,
                             volumes[i], slip)
        price = ceil_to_step(price, price_step) if buy else floor_to_step(price, price_step)
        fill = volume_fill(amount, volumes[i], rng)
        amount = amount if fill == amount else floor_fill(fill, amount, amount_step)
        if amount <= 0:
            continue
        cost = amount * price
        if in_base[not buy]:
            base_fee, cash_fee = amount * m.taker, 0.0
        else:
            base_fee, cash_fee = 0.0, cost * m.taker
        if buy:
            cash -= cost + cash_fee
            balance += amount - base_fee
        else:
            balance -= amount + base_fee
            cash += cost - cash_fee
        fills += 1
    return clock() - t, fills, cash


def seconds(cls, data: OHLCV, repeat: int, risk: RiskRules | None = None) -> tuple[float, int]:
    """Best CPU time of `repeat` backtests, and the number of fills."""
    (best, trades), = interleaved([(cls, risk)], data, repeat)
    return best, trades


def interleaved(runs: list[tuple[type, RiskRules | None]], data: OHLCV,
                repeat: int) -> list[tuple[float, int]]:
    """Best CPU time and fills of each (strategy, rules) in `runs`, run in turn `repeat`
    times: the ratios between them see the same load on a shared machine."""
    best, trades = [float("inf")] * len(runs), [0] * len(runs)
    for _ in range(repeat):
        for n, (cls, risk) in enumerate(runs):
            t = clock()
            r = backtest(cls, data={"ETH/BTC": data}, config=CONFIG, settings={}, risk=risk)
            best[n] = min(best[n], clock() - t)
            trades[n] = len(r.trades)
    return list(zip(best, trades))


def peak_memory(candles: int) -> float:
    """Peak RSS (MB) of a fresh process that generates the candles and runs the example."""
    out = subprocess.run([sys.executable, __file__, "--candles", str(candles), "--memory-child"],
                         capture_output=True, text=True, check=True, env=dict(os.environ))
    return float(out.stdout.strip())


def memory_child(candles: int) -> None:
    """Print this process's peak RSS in MB after one run (VmHWM: ru_maxrss would count the
    parent's memory, which a child inherits until it execs)."""
    backtest(load_example(), data={"ETH/BTC": generated_candles(candles)}, config=CONFIG,
             settings={})
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                print(int(line.split()[1]) / 1024)
                return
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.candles)
        return
    n = args.candles
    rate = lambda t: n / t  # noqa: E731
    memory = peak_memory(n)  # first, while this process is small
    data = generated_candles(n)
    sma = load_example()
    floor = max(bare_loop(n) for _ in range(args.repeat))
    (idle, _), (idle_ruled, _) = interleaved([(Idle, None), (Idle, ALL_RULES)], data,
                                             args.repeat)
    unsent, _ = seconds(load_example(send=False), data, args.repeat)
    # (b), (c) and (d) in turn: their ratios are the rules' cost
    (spot, fills), (orders, _), (every, _) = interleaved(
        [(sma, None), (sma, ORDER_RULES), (sma, ALL_RULES)], data, args.repeat)
    hand, hand_fills, hand_cash = min(hand_loop(data) for _ in range(args.repeat))
    spot_cash = backtest(sma, data={"ETH/BTC": data}, config=CONFIG,
                         settings={}).strategy.engine.state.cash
    print(f"python {sys.version.split()[0]}, {n:,} one-minute candles, CPU time, best of "
          f"{args.repeat} (load average {os.getloadavg()[0]:.1f})")
    print(f"bare loop, trivial call per candle:  {floor:>12,.0f} candles/s")
    print(f"(a) idle strategy:                   {rate(idle):>12,.0f} candles/s  "
          f"({rate(idle) / floor:.2f} x bare loop)")
    print(f"    (a) with every rule:             {rate(idle_ruled):>12,.0f} candles/s  "
          f"({(idle_ruled / idle - 1) * 100:+.1f}% run time: a strategy that waits)")
    print(f"(b) SMA cross example:               {rate(spot):>12,.0f} candles/s  "
          f"({rate(spot) / floor:.2f} x bare loop, {fills:,} fills)")
    print(f"    cost per fill, (b) - (a):        {(spot - idle) / fills * 1e6:>12.2f} us  "
          f"(the example's own tick and indicators included)")
    print(f"    engine's cost per fill, (b) - (b0): {(spot - unsent) / fills * 1e6:>9.2f} us  "
          f"((b0): (b) with call() doing nothing, {rate(unsent):,.0f} candles/s)")
    print(f"    example's own cost per fill, (b0) - (a): {(unsent - idle) / fills * 1e6:>4.2f} us  "
          f"(its indicators, their look-ahead checks, its tick on every candle)")
    print(f"(c) (b) with every order rule:       {rate(orders):>12,.0f} candles/s  "
          f"({(orders / spot - 1) * 100:+.1f}% run time)")
    print(f"(d) (b) with every rule, breakers in: {rate(every):>11,.0f} candles/s  "
          f"({(every / spot - 1) * 100:+.1f}% run time)")
    same = "the same trades" if (hand_fills, hand_cash) == (fills, spot_cash) else \
        f"NOT the same trades: {hand_fills:,} fills, cash {hand_cash!r} vs {spot_cash!r}"
    print(f"(e) hand-written loop, no engine:    {rate(hand):>12,.0f} candles/s  "
          f"({hand / hand_fills * 1e6:.2f} us per fill, all included; {same}; (b) takes "
          f"{spot / hand:.1f} x its time)")
    print(f"peak memory of one run of (b):       {memory:>12.0f} MB")
    print("targets: (a) >= 8,000,000/s, (b) >= 1,500,000/s, <= 8 us per fill, "
          "risk rules <= +10%, memory <= 200 MB (1M candles)")


if __name__ == "__main__":
    main()
