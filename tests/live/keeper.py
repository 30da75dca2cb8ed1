"""A child process for the crash-restart test: a live strategy that keeps one resting bid
and checkpoints its own variables. argv: exchange URL, trace path, bid price, marker."""

import json
import sys
import time

from planarpy import Strategy
from planarpy.exchanges import ApiKeys
from planarpy.localexchange.server import TEST_KEY, TEST_SECRET
from planarpy.modes.live import start_live
from planarpy.trace import EventTrace

SYM = "XRP/ETH"


class Keeper(Strategy):
    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = (SYM,)

    def reset(self) -> None:
        self.placed = 0
        self.fills_seen = 0
        self.marker = None
        self.restored = None

    def on_trade(self, ai, trade) -> None:
        self.fills_seen += 1

    def checkpoint(self) -> dict:
        return {"placed": self.placed, "fills_seen": self.fills_seen, "marker": self.marker}

    def restore(self, vars: dict) -> None:
        self.restored = dict(vars)
        self.placed, self.fills_seen, self.marker = vars["placed"], vars["fills_seen"], \
            vars["marker"]


def main() -> None:
    url, path, price, marker = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    trace = EventTrace.open(path, strategy="Keeper", exchange="binance")
    run = start_live(Keeper, exchange_url=url, keys=ApiKeys(TEST_KEY, TEST_SECRET), trace=trace,
                     settings={"exchanges": {"binance": {"rate_limit": False}}},
                     checkpoint_every=0.2, stall_after=2.0)
    s = run.strategy
    with run.session.engine.locked():
        if s.marker is None:
            s.marker = marker
        restored = s.restored
    print("READY " + json.dumps(restored), flush=True)
    while True:
        if not run.state()["assets"][SYM]["orders"]:
            run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0.5)
            with run.session.engine.locked():
                s.placed += 1
        time.sleep(0.02)  # the loop's pace: it keeps one order open until it is killed


if __name__ == "__main__":
    main()
