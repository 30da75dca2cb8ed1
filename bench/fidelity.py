"""Do sim, paper and live make the same decisions? One strategy over one replay, four clocks.

The strategy is tests/kit/fidelitykit.Cross: the shipped SMA cross at SMA(5/15) on XRP/ETH
one-minute candles, with a fixed stake (100 XRP per entry, all of it sold on exit), so
that a decision's amount does not depend on what earlier fills cost. Live and paper run
against the local exchange replaying every bundled XRP/ETH trade of 2019-10-11..13 (its
klines equal the bundled candles; the bench checks it); the sim runs over the bundled
one-minute candles, with the volume cap off and no slippage, from the candle each run
first ticked to the last. Clocks:

- stepped: the exchange's clock moves one minute at a time, each once every run ticked;
- 60x: market time runs sixty times the wall clock (both runs read the exchange's clock);
- ahead / behind: real time, the exchange's clock (server time too) 97 s ahead of or
  143 s behind the wall clock (two exchanges at once); live and paper read it through
  ccxt's measured offset.

For each clock and mode it prints: candles closed and ticked (each exactly once?), the
per-candle agreement of decisions with the sim (none, or the same side and amount),
decisions matched, the median fill-price difference in bps (positive: worse than the
sim's), and final equity against the sim's, with the part the fill prices explain (the
rest is fees, which follow the prices, and the exchange's rounding to 8 decimals). The
sim fills a market order at the next candle's open; live fills at the exchange's book
when the order arrives, paper sweeps the book it streamed: that is the documented fill
model difference. Prints figures only.
Run: python bench/fidelity.py [--stepped-minutes N] [--fast-minutes N] [--real-minutes N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "kit"))

from fidelitykit import MINUTE, SYM, Cross, exchange, run_live, run_paper, wait_for  # noqa: E402

from planarpy import backtest, load_csv  # noqa: E402
from planarpy.data.ohlcv import OHLCV  # noqa: E402
from planarpy.data.sample import sample_path, trades_path  # noqa: E402
from planarpy.localexchange.clock import Clock, wall_ms  # noqa: E402
from planarpy.localexchange.replay import load_feed  # noqa: E402
from planarpy.modes.sim import SimConfig  # noqa: E402

HOUR = 3_600_000
CANDLES = load_csv(sample_path("binance", SYM, "1m"))
TRADES = load_feed(trades_path("binance", SYM))
ORIGIN = int(CANDLES.timestamp[0]) + 2 * HOUR  # live starts with two hours of history


def shifted(o: OHLCV, shift: int) -> OHLCV:
    return OHLCV(o.timestamp + shift, o.open, o.high, o.low, o.close, o.volume)


def replay_shift(lx: Any) -> int:
    """How far the exchange moved the data in time (whole hours)."""
    st = next(iter(lx.engine.spot.values()))
    return int(st.feed.ts[0]) - int(TRADES.ts[0])


def start_runs(lx: Any, injected: bool) -> dict[str, Any]:
    clock = {} if injected else {"clock": None}
    # one process, one test key on each exchange: each live run needs ids of its own
    return {"live": run_live(lx, Cross, candles=100, strategy_id=f"cross-{lx.port}", **clock),
            "paper": run_paper(lx, Cross, candles=100, cash=1.0, **clock)}


def stepped(minutes: int) -> tuple[Any, dict[str, Any]]:
    lx = exchange(TRADES, Clock(start=wall_ms() // HOUR * HOUR), ORIGIN).__enter__()
    runs = start_runs(lx, injected=True)
    for run in runs.values():
        wait_for(lambda: run.session.ticks, 30)
    for _ in range(minutes):
        counts = {k: r.session.ticks for k, r in runs.items()}
        lx.step(MINUTE)
        for k, r in runs.items():
            wait_for(lambda: r.session.ticks > counts[k], 30)
    return lx, runs


def running(clocks: list[Clock], minutes: int, injected: bool) -> list[tuple[Any, dict]]:
    """Runs on each clock at once (they run by themselves) for `minutes` closes."""
    out, ends = [], []
    for clock in clocks:
        lx = exchange(TRADES, clock, ORIGIN).__enter__()
        out.append((lx, start_runs(lx, injected)))
        ends.append(lx.clock.now() // MINUTE * MINUTE + (minutes + 1) * MINUTE)
    while any(lx.clock.now() < end for (lx, _), end in zip(out, ends)):
        time.sleep(0.05)
    time.sleep(1.0)  # the last close's tick
    return out


def sim_for(s: Any, shift: int) -> Any:
    """The sim from the candle `s` first ticked to the last one, on the same candles."""
    first, last = s.seen[0][2], s.seen[-1][2]
    return backtest(Cross, data={SYM: shifted(CANDLES, shift)}, start=first,
                    stop=last + 2 * MINUTE, settings={},
                    config=SimConfig(slippage=0.0, volume_cap=False)).strategy


def vwaps(s: Any) -> dict[int, tuple[float, float]]:
    """Close time of each decision -> (average fill price, amount filled) of its order."""
    fills: dict[str, list[Any]] = {}
    for t in s.trades:
        fills.setdefault(t.order_id, []).append(t)
    out = {}
    for ts, _, _, oid in s.decisions:
        got = fills.get(oid)
        if got:
            amount = sum(t.amount for t in got)
            out[ts] = (sum(t.cost for t in got) / amount, amount)
    return out


def equity(cash: float, xrp: float, close: float) -> float:
    return cash + xrp * close


def report(name: str, mode: str, run: Any, shift: int) -> None:
    s = run.strategy
    sim = sim_for(s, shift)
    closes = [x[0] for x in s.seen]
    once = len(set(closes)) == len(closes) and closes == sorted(closes)
    gapless = all(b - a == MINUTE for a, b in zip(closes, closes[1:]))
    mine = {ts: (side, amount) for ts, side, amount, _ in s.decisions}
    theirs = {ts: (side, amount) for ts, side, amount, _ in sim.decisions}
    agree = sum(mine.get(ts) == theirs.get(ts) for ts in closes)
    matched = [ts for ts in closes if ts in mine and mine[ts] == theirs.get(ts)]
    price, sim_price = vwaps(s), vwaps(sim)
    bps, explained = [], 0.0
    for ts in matched:
        side, _ = mine[ts]
        if ts not in price or ts not in sim_price:
            continue
        (p, filled), (q, _) = price[ts], sim_price[ts]
        worse = (p - q) * (1 if side == "buy" else -1)
        bps.append(worse / q * 1e4)
        explained -= worse * filled
    close = float(shifted(CANDLES, shift).close[np.searchsorted(CANDLES.timestamp + shift,
                                                                s.seen[-1][2])])
    state = run.state()
    mine_eq = equity(state["cash"], state["assets"][SYM]["balance"], close)
    sim_eq = equity(sim.state.cash, sim.assets[0].balance, close)
    rows = {int(t): tuple(r) for t, *r in shifted(CANDLES, shift).to_rows()}
    seen_rows = {x[2]: x[3:8] for x in s.seen}
    differ = sum(rows.get(t) != r and not (r[4] == 0 and t not in rows)
                 for t, r in seen_rows.items())
    print(f"{name:>8} {mode:<6} {len(closes):>6} {'yes' if once and gapless else 'NO':>6} "
          f"{100 * agree / len(closes):>7.2f}% {len(matched):>4}/{len(mine):<4}/{len(theirs):<4} "
          f"{(statistics.median(bps) if bps else float('nan')):>7.2f} "
          f"{(statistics.median(map(abs, bps)) if bps else float('nan')):>7.2f} "
          f"{mine_eq:>10.6f} {sim_eq:>10.6f} {100 * (mine_eq - sim_eq) / sim_eq:>+7.3f}% "
          f"{explained:>+10.6f} {differ:>5}")


def finish(name: str, lx: Any, runs: dict[str, Any]) -> None:
    shift = replay_shift(lx)
    for run in runs.values():
        run.stop()
    for mode, run in runs.items():
        report(name, mode, run, shift)
    lx.__exit__(None, None, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stepped-minutes", type=int, default=len(CANDLES) - 121,
                    help="minutes stepped (default: the rest of the two days)")
    ap.add_argument("--fast-minutes", type=int, default=240, help="market minutes at 60x")
    ap.add_argument("--real-minutes", type=int, default=8,
                    help="minutes run in real time on the skewed clocks (both at once)")
    args = ap.parse_args()
    print(f"{'clock':>8} {'mode':<6} {'ticked':>6} {'once':>6} {'agree':>8} "
          f"{'matched/run/sim':<14} {'bps med':>7} {'|bps|':>7} {'equity':>10} "
          f"{'sim eq':>10} {'diff':>8} {'by price':>10} {'diffc':>5}")
    finish("stepped", *stepped(args.stepped_minutes))
    start = wall_ms() // HOUR * HOUR + HOUR
    (fast,) = running([Clock(start=start, speed=60.0)], args.fast_minutes, True)
    finish("60x", *fast)
    ahead, behind = running([Clock.wall(97_000), Clock.wall(-143_000)], args.real_minutes, False)
    finish("ahead", *ahead)
    finish("behind", *behind)
    print("ticked: candles ticked; once: each closed candle ticked exactly once, none missed; "
          "agree: candles with the sim's decision (none, or side and amount); matched: "
          "decisions equal to the sim's / the run's / the sim's; bps: fill price against the "
          "sim's, positive when worse (median, median of absolute); diff: final equity "
          "against the sim's, at the last close; by price: what the average fill prices of "
          "matched decisions account for; diffc: ticked candles that differ from the bundled ones")


if __name__ == "__main__":
    main()
