"""Live-mode test helpers: strategies and runs against the local exchange."""

from __future__ import annotations

import time
from typing import Any, Callable

from planarpy import Strategy
from planarpy.exchanges import ApiKeys
from planarpy.modes.live import start_live


class Quiet(Strategy):
    """A spot strategy whose tick does nothing: tests drive it with run.call()."""

    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = ("XRP/ETH",)

    def reset(self) -> None:
        self.updates: list[tuple[dict, dict]] = []
        self.errors: list[str] = []
        self.seen_errors: list[tuple[str, str]] = []
        self.fills: list[Any] = []

    def on_trade(self, ai: Any, trade: Any) -> None:
        self.fills.append(trade)

    def on_error(self, where: str, message: str) -> None:
        self.seen_errors.append((where, message))

    def on_order_update(self, ai: Any, before: dict, after: dict) -> None:
        self.updates.append((before, after))

    def on_order_error(self, ai: Any, reason: str, request: Any) -> None:
        self.errors.append(reason)


class Watched(Quiet):
    """Quiet, keeping every risk event it hears (risk rules and the kill switch)."""

    def reset(self) -> None:
        super().reset()
        self.risk_events: list[Any] = []

    def on_risk(self, event: Any) -> None:
        self.risk_events.append(event)


class QuietPerp(Quiet):
    exchange = "binanceusdm"
    quote = "USDT"
    margin = "isolated"
    universe = ("XRP/USDT:USDT",)


def live(lx: Any, cls: type[Strategy] = Quiet, **options: Any) -> Any:
    """Start `cls` live against the local exchange `lx` (no config, test keys), on the
    exchange's own clock (a stepped one moves only when the test steps it)."""
    options.setdefault("clock", getattr(lx, "clock", None))  # None: one in another process
    options.setdefault("stall_after", 2.0)
    options.setdefault("trace", None)  # a test that wants one passes it
    # ccxt's client-side rate limiter spaces requests for a real exchange's limits; the
    # local exchange has none, and tests that step candles fast would only wait on it
    options.setdefault("settings", {"exchanges": {cls.exchange: {"rate_limit": False}}})
    return start_live(cls, exchange_url=lx.url, keys=ApiKeys(lx.api_key, lx.secret), **options)


def eventually(check: Callable[[], Any], timeout: float = 5.0, every: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy; AssertionError on timeout."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def never(check: Callable[[], Any], seconds: float) -> bool:
    """Whether `check()` stays false for `seconds` (sampled every 20 ms): for what must
    not happen, where waiting for a state is not possible."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return False
        time.sleep(0.02)
    return True


async def until(check: Callable[[], Any], timeout: float = 5.0, every: float = 0.005) -> Any:
    """`eventually` for a coroutine: await until `check()` is truthy (the loop runs
    meanwhile); AssertionError on timeout."""
    import asyncio
    end = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)
    return value


def conns(lx: Any) -> list[Any]:
    """The local exchange's open WebSockets, copied safely from another thread."""
    while True:
        try:
            return list(lx.hub.conns)
        except RuntimeError:  # the set changed size while copied: copy again
            continue


def user_streams(lx: Any) -> list[Any]:
    """The open user-data subscriptions of `lx`: futures listen-key sockets, and spot
    WebSocket-API sockets subscribed to user data."""
    return [c for c in conns(lx) if c.kind == "user" or c.sub_id is not None]


def streaming(lx: Any, prefix: str) -> bool:
    """Whether a market stream whose name starts with `prefix` ("xrpeth@trade") is
    subscribed on `lx`."""
    return any(name.startswith(prefix) for c in conns(lx) if c.kind == "public"
               for name in list(c.streams))


def _watches(ex: Any) -> set[Any]:
    """The pending watches of ccxt.pro client `ex`: its futures by message hash, not the
    ones waiting for an answer to a request (keyed by a numeric request id)."""
    return {f for c in list(ex.clients.values()) for h, f in list(c.futures.items())
            if not str(h).isdigit()}


async def started(ex: Any, coro: Any, ready: Callable[[], Any] = lambda: True,
                  timeout: float = 5.0) -> Any:
    """Start ccxt.pro watch `coro` of client `ex` as a task; return it once the watch is
    pending in the client (a new future for its message hash) and `ready()` holds
    (the exchange side of the subscription: `streaming`, `user_streams`)."""
    import asyncio
    before = _watches(ex)
    task = asyncio.ensure_future(coro)
    await until(lambda: task.done() or (bool(_watches(ex) - before) and ready()), timeout)
    if task.done():
        task.result()
    return task


def counterparty(lx: Any, name: str = "other") -> Any:
    """A sync ccxt binance client on a second account of `lx` (created on first use)."""
    import ccxt

    from planarpy.localexchange import AccountSpec, point_ccxt
    key, secret = f"{name}-key", f"{name}-secret"
    try:
        lx.account(name)
    except Exception:
        lx.add_account(AccountSpec(name=name, api_key=key, secret=secret))
    client = point_ccxt(ccxt.binance({"apiKey": key, "secret": secret}), lx.url)
    client.load_markets()
    return client


def sells(run: Any) -> list[Any]:
    """The sell fills of a live or paper run's strategy."""
    return [t for t in run.strategy.fills if t.side.value == "sell"]


def raw_client(lx: Any, exchange: str = "binance") -> Any:
    """A sync ccxt client (binance or binanceusdm) on the strategy's own account of `lx`."""
    import ccxt

    from planarpy.localexchange import point_ccxt
    client = point_ccxt(getattr(ccxt, exchange)({"apiKey": lx.api_key, "secret": lx.secret}), lx.url)
    client.load_markets()
    return client


ALL = 1_000_000  # a page size that gets every order (the local exchange has no maximum)


def in_step(run: Any, lx: Any, symbols: tuple[str, ...] = ("XRP/ETH",)) -> list[str]:
    """Differences between a spot run's state and the exchange's ([] when equal):
    `reconcile()` (cash, holdings, open orders) and, for each of the run's orders, the
    amount its local trades add up to against what the exchange says it filled."""
    from collections import defaultdict
    out = run.reconcile()
    client = raw_client(lx)
    with run.session.engine.locked():
        local: dict[str, float] = defaultdict(float)
        for t in run.strategy.state.trades:
            local[t.order_id] += t.amount
    theirs = {o["clientOrderId"]: o["filled"] for sym in symbols
              for o in client.fetch_orders(sym, limit=ALL)
              if run.session.owns(o["clientOrderId"]) and o["filled"]}
    for cid in sorted(set(local) | set(theirs)):
        if abs(local.get(cid, 0.0) - theirs.get(cid, 0.0)) > 1e-9:
            out.append(f"order {cid} filled: local {local.get(cid, 0.0)}, exchange {theirs.get(cid, 0.0)}")
    return out


def perp_in_step(run: Any, lx: Any, symbol: str = "XRP/USDT:USDT") -> list[str]:
    """Differences between a USD-M run's state and the exchange's ([] when equal):
    `reconcile()` (cash, positions, open orders), the position's margin, and what each of
    the run's orders filled against its local trades."""
    from collections import defaultdict
    client = raw_client(lx, "binanceusdm")
    out = run.reconcile()
    theirs = sum(float(p.get("initialMargin") or 0.0) for p in client.fetch_positions([symbol]))
    with run.session.engine.locked():
        ai = run.strategy.state.assets[symbol]
        margin = ai.long.margin + ai.short.margin
        local: dict[str, float] = defaultdict(float)
        for t in ai.trades:
            local[t.order_id] += t.amount
    if abs(margin - theirs) > 1e-9 * max(1.0, theirs):
        out.append(f"{symbol} margin: local {margin!r}, exchange {theirs!r}")
    filled = {o["clientOrderId"]: o["filled"] for o in client.fetch_orders(symbol, limit=ALL)
              if run.session.owns(o["clientOrderId"]) and o["filled"]}
    out += [f"order {cid} filled: local {local.get(cid, 0.0)}, exchange {filled.get(cid, 0.0)}"
            for cid in sorted(set(local) | set(filled))
            if abs(local.get(cid, 0.0) - filled.get(cid, 0.0)) > 1e-9]
    return out


def replayed(strategy: Any, path: Any) -> None:
    """The trace at `path` replays to `strategy`'s state (AssertionError naming what differs)."""
    from planarpy.trace import replay_from_trace
    report = replay_from_trace(strategy, path)
    assert report.ok, str(report)


def crashed(src: Any, dst: Any, last: Callable[[dict], bool] | None = None,
            change: Callable[[dict], dict] = lambda payload: payload) -> None:
    """Copy the events of the trace at `src` to a new trace at `dst` up to the first one
    that `last` takes, as a crash right after it would leave them committed (None: all
    of them; `change`: each payload as it is written)."""
    from planarpy.trace import EventTrace, iter_events
    out = None
    try:
        for e in iter_events(src, run=None):
            if out is None:
                out = EventTrace.open(dst, strategy=e["strategy"], exchange=e["exchange"])
            out.record(e["kind"], change(e["payload"]), e["symbol"] or None, e["ts"])
            if last is not None and last(e):
                return
    finally:
        if out is not None:
            out.close()
    assert last is None, "no such event in the trace"


def user_stream_up(lx: Any) -> None:
    """Wait until a client is subscribed to `lx`'s spot user data (a run's balance watcher
    subscribes in the background once started; events before that reach no one)."""
    eventually(lambda: any(c.sub_id is not None for c in list(lx.hub.conns)))
