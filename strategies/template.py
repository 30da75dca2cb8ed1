"""A documented starting point: copy this file, rename the class, fill in `tick`.

Run it with `planarpy sim strategies/template.py` (or register a name for it in
user/planar.toml under [strategies]). Everything below the settings is optional.
"""

from planarpy import Strategy, call
from planarpy.indicators import sma


class Template(Strategy):
    # -- settings -------------------------------------------------------------------
    exchange = "binance"          # ccxt exchange id
    quote = "BTC"                 # the cash currency
    timeframe = "5m"              # one tick per candle of this size
    margin = "none"               # "none" (spot) or "isolated"
    universe = ("ETH/BTC",)       # the markets traded
    initial_cash = 1.0            # starting cash in sim and paper
    warmup = 20                   # candles to see before the first tick
    lookback = 20                 # candles each indicator value depends on (None: all)

    # -- callbacks ------------------------------------------------------------------
    def load(self):
        """Once, when the strategy is built (assets exist, no data yet)."""

    def reset(self):
        """Before each run: reset your own variables here."""
        self.entries = 0

    def indicators(self, ai):
        """Vectorised indicators over all of `ai.ohlcv`; value i may use candles <= i only,
        and with `lookback` set, only the last `lookback` of them (a recursive indicator
        such as `rsi` or `ema` needs the lookback its docstring gives, e.g. 60 * n).

        Each array becomes a list in `ai.ind[name]`; read it at `self.i` in `tick`.
        """
        return {"mean20": sma(ai.ohlcv.close, 20)}

    def start(self):
        """Just before the first tick: a good place to cache lookups."""
        self.ai = self.assets[0]
        self.mean = self.ai.ind["mean20"]

    def tick(self, ts):
        """`ts` is the close time (epoch ms) of candle `self.i`, the newest the strategy sees."""
        ai = self.ai
        price = ai.ohlcv.close.item(self.i)
        if ai.orders:  # an order is still resting
            return
        if ai.free_balance < ai.market.min_amount and price < 0.99 * self.mean[self.i]:
            amount = ai.floor_amount(self.free_cash * 0.5 / price)
            limit = ai.round_price(price * 0.999)
            result = call(self, "limit_order", ai, amount, limit, side="buy", tif="GTC")
            # result is a Trade (filled), `missing` (resting, no fill yet) or None (refused)
            if result is not None:
                self.entries += 1
        elif ai.free_balance >= ai.market.min_amount and price > self.mean[self.i]:
            call(self, "market_order", ai, ai.floor_amount(ai.free_balance), side="sell")

    def stop(self):
        """After the last tick."""

    def on_trade(self, ai, trade):
        """Each fill of one of your orders."""

    def on_position_open(self, ai, position): ...
    def on_position_update(self, ai, position): ...
    def on_position_close(self, ai, position): ...

    def on_order_error(self, ai, reason, request):
        """An order was refused: `call` returned None; `reason` says why."""

    def on_order_update(self, ai, before, after):
        """Paper and live: the exchange (or paper's matcher) updated one of your orders of
        `ai`; `before` and `after` are snapshots of it (mappings: status, filled, price,
        ...). A resting order filling and a cancel being confirmed both come here."""

    def on_error(self, where, message):
        """Paper and live: an exchange or connection error (`where` names the request or
        watcher, `message` what happened, never with a credential), and any callback of
        yours that raised (`where` is "callback"); the run goes on. It runs on the
        engine's loop: log or set a flag here, do not `call`."""

    def on_reconcile(self, alignment):
        """Live: a periodic reconciliation found the exchange differs from the local state
        (`alignment.lines()` says how). Define `checkpoint() -> dict` and `restore(d)` to
        have your own variables recorded in the trace and given back after a restart."""

    def on_interval(self, ts):
        """Paper and live, every `tick_interval` seconds between candle closes (when set):
        act within a candle; `self.i` is still the last candle ticked."""

    def on_risk(self, event):
        """A risk rule of planar.toml's [risk] acted (see the README, "Risk").

        `event.kind` is "denied" (an order or action was refused: `call` returned None or
        False) or "state_changed" (a breaker moved trading to "reducing" or "halted", or
        a reset made it "active" again). `event.rule` names the rule, `event.reason`
        quotes the figures, `event.state` is the trading state now. Leave a halt with
        `call(self, "reset_trading_state", "why")`.
        """

