"""Stopping a paper or live run: what it does with its orders and positions (`on_stop`),
for how long it keeps trying (`stop_timeout`), and the report of what is left open.

`on_stop` is "keep" (leave orders and positions as they are), "cancel" (cancel the open
orders) or "close" (cancel them and close the positions; on spot, sell what is held). It
comes from, first to last: the Python argument or command-line flag, the strategy's own
table `[live.NAME]` / `[paper.NAME]` (NAME: the strategy's class name), the account's
`[exchanges.NAME] on_stop`, the mode's table `[live]` / `[paper]`, and else "keep".
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from ... import validate as V
from ...actions import pipeline
from ...core.errors import ConfigError
from ...core.orders import OrderStatus
from ...exchanges.client import HAND_ORDERS, ON_STOP, ExchangeConfig

if TYPE_CHECKING:  # the session calls this module: imported for the annotations only
    from ...actions.engine import Engine
    from .session import Session

DEFAULT_STOP_TIMEOUT = 30.0  # seconds a stop keeps trying to cancel or close
ON_STOP_RULE = V.one_of(*ON_STOP)
STOP_TIMEOUT_RULE = V.positive("seconds")
MODE_KEYS = {"on_stop": ON_STOP_RULE, "stop_timeout": STOP_TIMEOUT_RULE,
             "checkpoint_every": V.positive("seconds")}
# the keys of [paper] / [live] and of each strategy's [paper.NAME] / [live.NAME]
MODE_TABLES = {"paper": MODE_KEYS,
               "live": {**MODE_KEYS, "hand_orders": V.one_of(*HAND_ORDERS),
                        "reconcile_every": V.positive("seconds"),
                        "reconcile_policy": V.one_of("warn", "adjust", "halt")}}


def stop_settings(settings: Mapping[str, Any], mode: str, exchange: ExchangeConfig,
                  strategy: str, *, on_stop: str | None = None, stop_timeout: float | None = None,
                  cancel_on_stop: bool = False, close_on_stop: bool = False) -> tuple[str, float]:
    """(on_stop, stop_timeout) of a run, from its arguments and planar.toml (see above);
    `cancel_on_stop` and `close_on_stop` are the older spellings of on_stop."""
    general, own = mode_tables(settings, mode, strategy)
    alias = "close" if close_on_stop else "cancel" if cancel_on_stop else None
    if on_stop is not None and alias is not None and on_stop != alias:
        raise ConfigError(f"on_stop={on_stop!r} contradicts {alias}_on_stop=True")
    chosen = next((v for v in (on_stop, alias, own.get("on_stop"), exchange.on_stop,
                               general.get("on_stop")) if v is not None), "keep")
    timeout = next((v for v in (stop_timeout, own.get("stop_timeout"),
                                general.get("stop_timeout")) if v is not None),
                   DEFAULT_STOP_TIMEOUT)
    return ON_STOP_RULE.value(chosen, "on_stop"), STOP_TIMEOUT_RULE.value(timeout, "stop_timeout")


def mode_tables(settings: Mapping[str, Any], mode: str,
                 strategy: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checked `[mode]` table and the strategy's `[mode.NAME]` (every NAME checked)."""
    raw = settings.get(mode)
    if raw is None:
        return {}, {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[{mode}] must be a table, not {raw!r}")
    general = V.read_table({k: v for k, v in raw.items() if not isinstance(v, Mapping)},
                           MODE_TABLES[mode], f"[{mode}]")
    own: dict[str, Any] = {}
    for name, table in raw.items():
        if isinstance(table, Mapping):
            checked = V.read_table(table, MODE_TABLES[mode], f"[{mode}.{name}]")
            own = checked if name == strategy else own
    return general, own


@attrs.frozen(slots=True)
class StopReport:
    """How a run stopped: why, its `on_stop`, what is still open as far as the local state
    knows (`still_open`), and what on_stop had to cancel or close and could not (`undone`)."""

    on_stop: str
    reason: str
    still_open: tuple[str, ...] = ()
    undone: tuple[str, ...] = ()
    error: str | None = None  # the stop itself failed (the engine hung or crashed)

    @property
    def complete(self) -> bool:
        """Whether on_stop did all it had to and the stop sequence ran to its end."""
        return not self.undone and self.error is None

    def summary(self) -> str:
        """What went wrong, on one line (empty when the stop is complete)."""
        parts = [f"stop failed: {self.error}"] if self.error else []
        if self.undone:
            parts.append(f"on_stop = {self.on_stop} could not finish; still open: "
                         + "; ".join(self.undone))
        return "; ".join(parts)

    def lines(self) -> list[str]:
        """What a user must know, one line each (nothing when all went as asked)."""
        out = [f"stop failed: {self.error}"] if self.error else []
        if self.undone:
            out.append(f"on_stop = {self.on_stop} could not finish; still open:")
            out += [f"  {item}" for item in self.undone]
        elif self.still_open:
            out.append(f"left open (on_stop = {self.on_stop}):")
            out += [f"  {item}" for item in self.still_open]
        return out


def open_items(e: Engine) -> list[str]:
    """The strategy's open orders and positions, one line each."""
    return order_items(e) + position_items(e)


def order_items(e: Engine) -> list[str]:
    """The open orders, one line each; one whose submit got no answer says its outcome is
    unknown (it may exist on the exchange or not)."""
    return [f"{ai.symbol} order {o.id}: {o.side.value} {o.amount:g} @ {o.price:.10g} "
            f"({o.filled:g} filled{_UNKNOWN if o.status is OrderStatus.UNKNOWN else ''})"
            for ai in e.assets for o in list(ai.orders.values())]


_UNKNOWN = ", outcome unknown"


def position_items(e: Engine) -> list[str]:
    return [f"{ai.symbol} {p.side.value} position {p.amount:g} @ {p.entry_price:.10g}"
            for ai in e.assets for p in (ai.long, ai.short) if p.amount > 0]


def closing_items(e: Engine) -> list[str]:
    """What a close has still to close, one line an asset: its closing order."""
    return [f"{ai.symbol}: {r.side.value} {r.amount:g} still to close (it goes once its "
            "orders are cancelled)"
            for ai in e.assets if (r := pipeline.closing_order(e, ai)) is not None]


def undone_items(e: Engine, on_stop: str, unsold: list[Any]) -> list[str]:
    """What `on_stop` had to do and is not done: open orders (cancel, close), open
    positions (close), and spot assets whose sale failed (close)."""
    if on_stop == "keep":
        return []
    if on_stop == "cancel":
        return order_items(e)
    return order_items(e) + position_items(e) + [
        f"{ai.symbol}: the sale failed; {ai.balance:g} {ai.market.base} held" for ai in unsold]


async def carry_out(session: Session, deadline: float) -> list[str]:
    """Do on_stop's work, again with backoff while some is left, until `deadline` (loop
    time); return what is still undone. No failure escapes: each is reported."""
    loop = asyncio.get_running_loop()
    delay = 0.25
    while True:
        unsold: list[Any] = []
        try:
            unsold = await asyncio.wait_for(session.stop_attempt(),
                                            max(0.1, deadline - loop.time()))
        except asyncio.TimeoutError:
            pass
        except Exception as e:
            await session.report_error(e, where="on_stop")
        undone = undone_items(session.e, session.on_stop, unsold)
        if not undone or loop.time() + delay >= deadline:
            return undone
        await session.record("exchange_error", {"where": "on_stop", "error": "retrying",
                                                "detail": f"{len(undone)} still open"})
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
