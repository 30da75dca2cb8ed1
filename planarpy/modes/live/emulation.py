"""Live mode's emulated conditional orders: the engine holds the trigger, watches the
asset's public trades, and sends the order when it fires.

An emulated order (`route` "emulated": its venue cannot hold the type) is in the state
like any order and in the trace (order_created with its route). Its trades watcher
(`triggers:SYMBOL`) fires it by the rules of `runtime.triggers`: `order_triggered` is
applied at once (so no later trade fires it twice) and the order is in flight from then
on (a cancel from the strategy before it is sent wins: it is never sent); then the other
legs of its OCO pair are cancelled, and only once the exchange confirms that (asked by
client id until it does) is the order sent, as the market (or limit) order it has
become, under its own id as the client order id: the exchange's reports of that order
are the conditional order's fills.

Each held order has a mark (`mark`): the exchange time of the newest public trade it has
been shown, or its creation time (the exchange's clock) if later. Trades at or before
its mark never fire or trail it. The watcher keeps one time per asset
(`session.trigger_seen`): up to where it has applied the trades (each newer trade read,
and where a REST catch-up read every trade: in a quiet market the end of the last hour
wholly in the past by the exchange's clock, so that the next catch-up starts there);
every held order has been shown those, so its mark is that time, or its creation time
if later (a re-armed trailing stop's: see below). Exchange trade times are only ever
compared with exchange times.

When the stream stalls, comes back after a loss, or the run restarts, the watcher
fetches by REST the trades since the oldest mark (`since`, page by page). A range the
stream missed (after `connection_lost`, after a restart, or a stall batch holding trades
newer than the last one the stream delivered) is where the market went while nobody
watched: its trades are applied in their order, and an order they reach fires now, at
the last price, and the run is told (`trigger_late` in the trace,
`on_error("trigger_late:SYMBOL", ...)` and a "trigger" alert), since its fill may be far
from its trigger. A stall batch before the stream
delivered anything holds no missed range: its trades newer than the marks are applied
one by one, as the stream's are. While the re-fetch after a loss is due (REST fails
too), the stream's trades still fire what they reach; the marks stay, so that the
re-fetch, when it gets through, still covers the range the stream missed.

A restart on the trace of earlier runs re-arms the emulated orders they left open: the
run's resume (resume.py) carries them over like any open order (the same id, trigger,
trailing reference and group) but asks no exchange about them, and `rearm` watches
their trades again. A re-armed order's mark is its creation time, from the trace (a
trailing stop's: the exchange time of the trade behind its last move, since its stop
already follows the trades up to it), and the first thing its watcher does is the REST
catch-up over the time the run was stopped: a trigger reached meanwhile fires late, with
the alert. One that had fired is looked up by its own id, like any order: when the
exchange does not know it, it was never sent (the run stopped while its pair's cancel
was unsettled), and it is sent now, with the alert.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any, Iterable, Mapping, NamedTuple

from ...core.instances import AssetInstance
from ...core.orders import Order, OrderType
from ...core.precision import floor_to_step
from ..runtime import triggers
from ..runtime.watchers import Watcher
from . import orders

if TYPE_CHECKING:  # for the annotations only: the session imports this module
    from .session import LiveSession

LIMIT = 1000  # trades one REST page asks for (Binance's most)
PAGES = 12  # pages one catch-up reads at most
HOUR = 3_600_000  # Binance answers a `since` query for one hour of trades at a time


async def watch(session: LiveSession, symbol: str, resync: bool = False) -> None:
    """Start (or keep) the public trades watcher that fires `symbol`'s emulated orders;
    `resync`: its first act is the REST catch-up (a restart: the run did not watch)."""
    name = f"triggers:{symbol}"
    w = session.watchers.get(name)
    if w is None:
        w = Watcher(session, name, session.stream("watch_trades", symbol),
                    lambda: fetch(session, symbol),
                    lambda d: on_trades(session, symbol, d, rest=False), symbol=symbol,
                    stall_after=session.stall_after,
                    process_rest=lambda d: on_trades(session, symbol, d, rest=True))
        w.resync = resync
        session.watchers[name] = w
    w.start()


def mark(session: LiveSession, order: Order) -> int:
    """The exchange time of the newest public trade `order` has been shown (its creation
    time, or a re-armed trailing stop's last move, when later)."""
    return max(order.date, session.trigger_seen.get(order.symbol, 0),
               session.trigger_rearmed.get(order.id, 0))


def _held(session: LiveSession, symbol: str) -> list[Order]:
    ai = session.e.state.assets.get(symbol)
    return [o for o in triggers.held(ai) if o.route == "emulated"] if ai is not None else []


class Caught(NamedTuple):
    """A REST catch-up: the trades it read, and the exchange time up to which they are
    all the trades there were (nothing read for sure: below the `since` asked)."""

    trades: list[Mapping[str, Any]]
    upto: int


async def fetch(session: LiveSession, symbol: str) -> Caught:
    """The REST side of the watcher: the public trades after the oldest mark of the
    orders it holds (none when it holds none)."""
    held = _held(session, symbol)
    if not held:
        return Caught([], 0)
    return await trades_since(session, symbol, min(mark(session, o) for o in held) + 1)


def _keep(rows: dict[Any, Mapping[str, Any]], page: Iterable[Mapping[str, Any]]) -> None:
    for t in page:
        rows[t.get("id") or (t.get("timestamp"), t.get("price"), t.get("amount"))] = t


def _times(page: Iterable[Mapping[str, Any]]) -> list[int]:
    return [int(t.get("timestamp") or 0) for t in page]


async def trades_since(session: LiveSession, symbol: str, since: int) -> Caught:
    """The public trades of `symbol` from exchange time `since` to now, page by page
    (a full page: the next starts at its newest trade; Binance answers an hour at a time:
    the next hour then), and how far they are complete: through the newest trade read,
    or the end of the last hour wholly in the past (a quiet market's marks move on with
    no trade). An hour is in the past when the exchange's clock, asked before the first
    page, and the run's both say so (`_reached`): one not ended yet may still get trades.
    Past `PAGES` pages the newest page is read too; when it does not reach back to where
    the pages stopped, the run is told that trades between may be missing."""
    rows: dict[Any, Mapping[str, Any]] = {}
    upto, now = since - 1, session.e.clock.now()
    # either may be ahead of the exchange's trades: the run's clock (an offset measured up
    # to an hour ago, a clock given), an exchange's /time when its market runs on another
    # clock (the local exchange's stepped replay answers the wall clock)
    ended = min(now, await _reached(session, symbol)) if since + HOUR < now else 0
    for _ in range(PAGES):
        page = await session.request("fetch_trades", symbol, since, LIMIT) or []
        _keep(rows, page)
        newest = max(_times(page), default=since)
        if len(page) >= LIMIT:  # those before its newest trade are all there
            upto, since = max(upto, newest - 1), newest if newest > since else since + 1
        elif since + HOUR < ended:  # an hour wholly in the past, read whole
            upto, since = since + HOUR, since + HOUR + 1
        else:
            return Caught(list(rows.values()), max(upto, newest if page else upto))
    page = await session.request("fetch_trades", symbol, None, LIMIT) or []
    _keep(rows, page)
    times = _times(page)
    if len(page) >= LIMIT and min(times) > since:
        message = (f"{symbol}: more public trades since the stream was lost than {PAGES} "
                   f"pages of {LIMIT}: the triggers were checked on the first pages and the "
                   f"newest one; trades between them (after {since}) may be missing")
        session.tell_error(f"trigger_gap:{symbol}", message)
        session.alert("trigger", message, {"symbol": symbol})
    return Caught(list(rows.values()), max([upto, *times]))


async def _reached(session: LiveSession, symbol: str) -> int:
    """An exchange time the exchange has reached for sure: its own clock, asked (the run's
    clock is the local one, corrected by an offset measured now and then, or one it was
    given), or on a venue that cannot tell it, the newest public trade of `symbol` its
    stream delivered (0: none, nothing known). A failed ask fails the catch-up, as a
    failed page does: it is tried again."""
    streamed = session.trigger_streamed.get(symbol, 0)
    if not session.client.has.get("fetchTime"):
        return streamed
    return max(streamed, int(await session.request("fetch_time") or 0))


def _rows(trades: Iterable[Mapping[str, Any]] | None) -> list[tuple[int, float]]:
    """(exchange time, price) of each trade, oldest first (those of one millisecond in
    the order the exchange gave them)."""
    return sorted(((int(t.get("timestamp") or 0), float(t["price"])) for t in trades or ()
                   if t.get("price")), key=lambda r: r[0])


def _missed(session: LiveSession, symbol: str, rows: list[tuple[int, float]]) -> bool:
    """Whether a REST batch is a range the stream missed: after a loss or a restart
    (a re-fetch is due), while the stream is down, or a stall batch with trades newer
    than the newest the stream delivered."""
    w = session.watchers.get(f"triggers:{symbol}")
    if w is not None and (w.resync or not w.connected):
        return True
    streamed = session.trigger_streamed.get(symbol, 0)
    return streamed > 0 and rows[-1][0] > streamed


async def on_trades(session: LiveSession, symbol: str, trades: Any, rest: bool) -> None:
    """Fire what these public trades reach; `rest`: a REST batch (`Caught`: a stall, a
    loss, a restart), fired late when it is a range the stream missed. While a re-fetch
    after a loss is due (it failed so far), the stream's trades still fire what they
    reach, but move no mark: the re-fetch starts where the stream was lost."""
    w = session.watchers.get(f"triggers:{symbol}")
    resyncing = not rest and w is not None and w.resync
    caught = trades if rest else Caught(trades, 0)
    rows = _rows(caught.trades)
    if rows and not rest and not resyncing:
        session.trigger_streamed[symbol] = max(session.trigger_streamed.get(symbol, 0),
                                               rows[-1][0])
    if rows and rows[-1][0] >= session.last_trade.get(symbol, (0, 0.0))[0]:
        session.last_trade[symbol] = rows[-1]  # the price new triggers are checked at
    ai = session.e.state.assets.get(symbol)
    if ai is None:
        return
    fired: list[tuple[Order, list[str]]] = []
    alerts: list[str] = []
    async with session.engine.mutating():
        held = _held(session, symbol)
        if held and rows:
            fire = lambda a, o, p: _trigger(session, a, o, p, fired)  # noqa: E731
            if rest and _missed(session, symbol, rows):
                _catch_up(session, ai, held, rows, fire, alerts.append)
            else:
                _each(session, ai, held, rows, fire)
        if not resyncing:  # every held order has been shown these
            newest = max(rows[-1][0] if rows else 0, caught.upto)
            session.trigger_seen[symbol] = max(session.trigger_seen.get(symbol, 0), newest)
    for message in alerts:
        await session.record("trigger_late", {"symbol": symbol, "message": message}, symbol)
        session.tell_error(f"trigger_late:{symbol}", message)
        session.alert("trigger", message, {"symbol": symbol})
    for order, pair in fired:  # each on its own: one waiting for its pair holds no other
        session.engine.fire(_reported(session, ai, _send_fired(session, ai, order, pair)))


async def _reported(session: LiveSession, ai: AssetInstance, coro: Any) -> None:
    """Run `coro`, telling the run of any error it lets through."""
    try:
        await coro
    except Exception as e:
        await session.report_error(e, where=f"triggers:{ai.symbol}", symbol=ai.symbol)


def _each(session: LiveSession, ai: AssetInstance, held: list[Order], rows: list[tuple[int, float]],
          fire: triggers.Fire, price: float | None = None) -> None:
    """Apply the trades one by one, in their order, each to the orders it is news to
    (fired at the trade's price, or at `price`)."""
    marks = {o.id: mark(session, o) for o in held}
    oldest = min(marks.values())
    for ts, p in rows:
        if ts > oldest:
            triggers.on_prices(session.e, ai, p, p, fire, price,
                               only=lambda o: ts > marks.get(o.id, ts), ts=ts)


def _catch_up(session: LiveSession, ai: AssetInstance, held: list[Order],
              rows: list[tuple[int, float]], fire: triggers.Fire, alert: Any) -> None:
    """A range the stream missed: its trades are applied in their order, as the stream's
    are (a trailing stop follows a rally before the fall after it is checked against
    it); an order they reach fires at the last price, with an alert: it may have fired
    while nobody watched."""
    last = rows[-1][1]

    def late(a: AssetInstance, order: Order, price: float) -> None:
        seen = [p for ts, p in rows if ts > mark(session, order)]
        fire(a, order, price)
        alert(f"{a.symbol}: {order.type.value} {order.id} at {order.trigger:g} may have "
              f"fired while the stream was down (the market traded from {min(seen):g} to "
              f"{max(seen):g}); it fired on reconnect at the market, {price:g}")

    _each(session, ai, held, rows, late, last)


def _request(ai: AssetInstance, order: Order) -> dict[str, Any]:
    return {"type": order.type.value, "symbol": ai.symbol, "trigger": order.trigger,
            "emulated": True}


def _trigger(session: LiveSession, ai: AssetInstance, order: Order, price: float,
             fired: list[tuple[Order, list[str]]]) -> None:
    """Mark `order` fired and in flight, not sent yet (the caller holds the state lock: a
    cancel from the strategy finds it so from here on); it is sent after, with the ids of
    its OCO pair's other legs open now. (A fill of a leg closes the untriggered emulated
    legs of its group in the same step: `contingent.follow`.)"""
    session.apply_now("order_triggered", {"id": order.id, "symbol": ai.symbol,
                                          "trigger": order.trigger, "price": price,
                                          "client_id": order.id,
                                          "ts": session.e.clock.now()}, ai.symbol)
    session.flights.start(order, _request(ai, order))
    session.trigger_unsent.add(order.id)
    fired.append((order, _pair(ai, order)))


def _pair(ai: AssetInstance, order: Order) -> list[str]:
    """The ids of the other open legs of `order`'s OCO group."""
    return sorted(o.id for o in ai.orders.values()
                  if order.group and o.group == order.group and o is not order and o.is_open)


def unsent(session: LiveSession, order: Order) -> bool:
    """Whether the emulated `order` is on no exchange: not fired, or fired and its send
    not started (a cancel then closes it here: it is never sent)."""
    return order.route == "emulated" and (not order.triggered or
                                          order.id in session.trigger_unsent)


def close(session: LiveSession, ai: AssetInstance, held: Iterable[Order]) -> None:
    """Cancel emulated orders on no exchange (`unsent`): closed here (the caller holds
    the state lock)."""
    for order in held:
        session.apply_now("order_closed", {"id": order.id, "symbol": ai.symbol,
                                           "status": "canceled"}, ai.symbol)


async def _send_fired(session: LiveSession, ai: AssetInstance, order: Order,
                      pair: list[str]) -> None:
    """Send a fired order. The other legs of its OCO pair are cancelled first (on the
    exchange they hold the funds; this is the pair's one canceller: `settle_group` leaves
    an emulated trigger to it), until the exchange confirms each is closed
    (`_cancel_pair`). If one of them filled meanwhile (the exchange matched it before the
    cancel arrived), the pair sells (or buys) once: the fired order goes only for what
    that fill left (`_rest_of_pair`). A cancel of the fired order from the strategy that
    came before the send starts closes it at once (`unsent`): it is never sent."""
    await _cancel_pair(session, ai, order, pair)
    async with session.engine.mutating():  # from here on a cancel goes to the exchange
        session.trigger_unsent.discard(order.id)
        withdrawn = not order.is_open
    if withdrawn:
        session.flights.seen(order)
        return
    taken = math.fsum(t.amount for t in ai.trades if t.order_id in pair)
    if taken > 0:
        await _rest_of_pair(session, ai, order, taken)
        session.flights.seen(order)
        return
    await orders.submit(session, ai, order, _request(ai, order), 0.0, False,
                        resend_for=orders.PROTECTIVE_RESEND)


async def _cancel_pair(session: LiveSession, ai: AssetInstance, order: Order,
                       pair: list[str]) -> None:
    """Cancel the pair's other open legs, and settle a cancel of unknown outcome (a
    timeout, a 5xx): ask the exchange for the leg by client id, cancel again while it
    is open, until it is closed (cancelled or filled). Sending the fired order before
    that could sell twice: the leg holds the funds, and may still fill. The run is told
    once that the fired order waits."""
    wait, told = 0.05, False
    while True:
        async with session.engine.mutating():
            others = _on_exchange(session, ai, order, pair)
        if not others or await orders.cancel(session, ai, None, [o.id for o in others],
                                             waitfor=session.waitfor, confirm=True):
            return
        if not told:
            told = True
            session.tell_error(f"oco:{ai.symbol}", (
                f"the cancel of {', '.join(o.id for o in others)} (the other leg of a fired "
                "OCO order) is not confirmed: it is asked about and cancelled again, and "
                "the fired order goes once the exchange says the other leg is closed"))
        await asyncio.sleep(wait)
        wait = min(wait * 2, 1.0)
        for o in others:
            if o.is_open:
                await orders.sync_order(session, ai, o)


def _on_exchange(session: LiveSession, ai: AssetInstance, order: Order,
                 pair: list[str]) -> list[Order]:
    """The legs of `pair` left to cancel on the exchange (the caller holds the state
    lock). Those on no exchange are closed here: one not fired, and one fired and not sent
    yet while `order` is open (of two legs fired at once, the first to get here goes); a
    fired leg already sent is left to its own send."""
    others = [ai.orders[i] for i in pair if i in ai.orders and ai.orders[i].is_open]
    close(session, ai, [o for o in others if unsent(session, o) and
                        (order.is_open or not o.triggered)])
    return [o for o in others if o.is_open and not (o.triggered and o.route == "emulated")]


async def _rest_of_pair(session: LiveSession, ai: AssetInstance, order: Order,
                        taken: float) -> None:
    """The other leg of `order`'s pair filled `taken` before it could be cancelled: the
    fired order is closed unsent, and what the pair still had to sell (or buy) goes as a
    market order of its own (none when that fill took it all, or left less than the
    market's minimum). The run is told (on_error "oco:SYMBOL")."""
    from ...actions.gate import new_order
    from ...actions.requests import MarketOrder

    m = ai.market
    left = floor_to_step(order.remaining - taken, m.amount_step)
    message = (f"{order.type.value} {order.id} fired after the other leg of its OCO pair "
               f"filled {taken:g} of {order.remaining:g} on the exchange: ")
    coro = None
    async with session.engine.mutating():
        session.apply_now("order_closed", {"id": order.id, "symbol": ai.symbol,
                                           "status": "canceled"}, ai.symbol)
        if left <= 0 or left < m.min_amount:
            message += "nothing more is sent" + (f" ({left:g} left is below the minimum)"
                                                 if left > 0 else "")
        else:
            req = MarketOrder(ai, left, order.side, order.pos, order.reduce_only)
            rest = new_order(ai, req, order.trigger, session.e.clock.now())
            rest.id = session.new_client_id()
            coro = orders.send(session, ai, rest, {**req.payload(), "rest_of": order.id},
                               0.0, False)
            message += f"the rest, {left:g}, goes at the market as {rest.id}"
    session.tell_error(f"oco:{ai.symbol}", message)
    if coro is not None:
        await coro


async def rearm(session: LiveSession) -> list[Order]:
    """Watch again the emulated orders the run holds at its start (carried over from the
    earlier runs of its trace), each from its mark (see the module docstring), with the
    REST catch-up first; returns them."""
    held = [o for ai in session.e.assets for o in triggers.held(ai) if o.route == "emulated"]
    session.trigger_rearmed.update(await _last_moves(
        session, {o.id for o in held if o.type is OrderType.TRAILING_STOP}))
    for sym in {o.symbol for o in held}:
        await watch(session, sym, resync=True)
    for ai in session.e.assets:
        for o in [o for o in ai.orders.values() if o.id in session.trigger_unsent]:
            _resend(session, ai, o)
    return held


def _resend(session: LiveSession, ai: AssetInstance, order: Order) -> None:
    """Send an order that fired in an earlier run and was never sent (that run stopped
    while its pair's cancel was unsettled): late, so the run is told."""
    message = (f"{ai.symbol}: {order.type.value} {order.id} at {order.trigger:g} fired before "
               "the run stopped and was never sent: it is sent now")
    session.tell_error(f"trigger_late:{ai.symbol}", message)
    session.alert("trigger", message, {"symbol": ai.symbol})
    session.flights.start(order, _request(ai, order))
    session.engine.fire(_reported(session, ai, _send_fired(session, ai, order,
                                                           _pair(ai, order))))


async def _last_moves(session: LiveSession, ids: set[str]) -> dict[str, int]:
    """The exchange time of the trade behind the last `trigger_moved` of each trailing
    stop in `ids` (`trade_ts`; a trace from before it: the move's own time), from the
    run's trace (none without one)."""
    path = getattr(session.recorder, "path", None)
    if not ids or path is None:
        return {}
    from ...trace import trace_tail
    try:
        events = await asyncio.to_thread(trace_tail, path, 1_000_000, "trigger_moved")
    except Exception as e:  # a trace it cannot read: the creation times, told
        await session.report_error(e, where="rearm")
        return {}
    return {str(p["id"]): int(p.get("trade_ts") or p.get("ts") or 0)
            for p in (ev["payload"] or {} for ev in events) if str(p.get("id")) in ids}
