"""What live supervision costs: one reconciliation, and the shadow backtest per tick.

- Reconciliation: a live run on the local exchange (real ccxt over HTTP on 127.0.0.1),
  with 0 and 20 resting orders, reconciled on demand (`run.align()`) `--rounds` times;
  printed: the median and worst time of one reconciliation (what it costs every
  `reconcile_every` seconds), beside the plain difference report `run.reconcile()`
  timed in the same process.
- Shadow: tests/kit/fidelitykit.Cross live on the stepped replay for `--minutes`
  candles with the shadow on; printed: the shadow's time per tick (its sim step, the
  comparison and its event), beside the median time of the run's own tick.

Prints figures only. Run: python bench/supervision.py [--rounds N] [--minutes N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "kit"))

from fidelitykit import CANDLES, T0, Cross, Memory, exchange, run_live, step_minutes  # noqa: E402
from livekit import Quiet, live, raw_client  # noqa: E402
from planarpy.localexchange import LocalExchange  # noqa: E402
from planarpy.localexchange.clock import Clock  # noqa: E402


def reconciliation(rounds: int, orders: int) -> None:
    with LocalExchange() as lx:
        lx.step(3_600_000)
        bid = raw_client(lx).fetch_order_book("XRP/ETH")["bids"][0][0]
        with live(lx, Quiet, reconcile_every=3600) as run:
            for k in range(orders):
                run.call("limit_order", "XRP/ETH", 100.0, round(bid * (0.5 + k / 100), 8),
                         side="buy", waitfor=0.2)
            aligned = [run.align().ms for _ in range(rounds)]
            plain = []
            for _ in range(rounds):
                began = time.perf_counter()
                run.reconcile()
                plain.append((time.perf_counter() - began) * 1000)
    print(f"reconciliation, {orders:2d} open orders: align() median "
          f"{statistics.median(aligned):.2f} ms, worst {max(aligned):.2f} ms; "
          f"reconcile() median {statistics.median(plain):.2f} ms "
          f"(ratio {statistics.median(aligned) / statistics.median(plain):.2f})")


def shadow(minutes: int) -> None:
    lx = exchange(CANDLES, Clock(start=T0), T0)
    with lx:
        run = run_live(lx, Cross, candles=100, trace=Memory(), shadow=True)
        session = run.session
        ticks: list[float] = []
        tick = session._tick

        def timed(i: int, ts: int) -> None:
            began = time.perf_counter()
            tick(i, ts)
            ticks.append((time.perf_counter() - began) * 1000)
        session._tick = timed
        while not session.ticks:
            time.sleep(0.01)
        step_minutes(lx, run, minutes)
        m = session.shadow.metrics()
        run.stop()
    print(f"shadow, {minutes} ticks ({m['decisions']} decisions, match "
          f"{m['match_rate']:.0%}): {m['overhead_ms']:.3f} ms per tick; the run's tick "
          f"(shadow included) median {statistics.median(ticks):.3f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--minutes", type=int, default=60)
    a = p.parse_args()
    for orders in (0, 20):
        reconciliation(a.rounds, orders)
    shadow(a.minutes)


if __name__ == "__main__":
    main()
