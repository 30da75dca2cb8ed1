"""`LocalExchange`: the engine, REST and WebSocket on one aiohttp port, plus admin routes.

Run it in the caller's event loop (`async with LocalExchange(...)`) or in a background
thread (`with LocalExchange(...)`). Admin routes under `/lx/` (no auth; loopback only):
`GET /lx/state`, `GET|POST /lx/faults`, `POST /lx/faults/clear`, `POST /lx/faults/drop`,
`POST /lx/step` ({"ms": n}), `POST /lx/orders` (an order placed by hand, see `place_by_hand`),
`POST /lx/transfer` (a deposit or withdrawal, see `transfer`).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Mapping

import attrs
from aiohttp import web

from ..core.market import Market
from ..data import sample
from . import rest
from .accounts import Account
from . import formats as fmt
from .auth import BinanceError, Credentials
from .clock import Clock, wall_ms
from .engine import Engine
from .faults import Faults
from .markets import MarketSpec
from .replay import HOUR_MS, Feed, load_feed
from .ws import Hub

TEST_KEY = "lx-test-api-key"
TEST_SECRET = "lx-test-secret"
DEFAULT_SPOT = {"BTC": "10", "ETH": "100", "XRP": "100000", "USDT": "100000"}
DEFAULT_FUTURES = "100000"


@attrs.frozen(slots=True)
class AccountSpec:
    """A test account to create at start: keys and starting balances."""

    name: str = "test"
    api_key: str = TEST_KEY
    secret: str = attrs.field(default=TEST_SECRET, repr=False)
    spot: Mapping[str, Any] = attrs.field(factory=lambda: dict(DEFAULT_SPOT))
    futures: Any = DEFAULT_FUTURES
    leverage: int = 20


def bundled_markets() -> list[Market]:
    """Every market with bundled sample data (binance spot and binanceusdm)."""
    out = []
    for exchange in ("binance", "binanceusdm"):
        out += [Market.from_ccxt(m) for m in sample.sample_markets(exchange).values()]
    return out


def bundled_data(market: Market) -> Path | None:
    exchange = "binanceusdm" if market.is_derivative else "binance"
    path = sample.trades_path(exchange, market.symbol)
    for tf in ("1m", "5m", "15m", "1h"):
        path = path or sample.sample_path(exchange, market.symbol, tf)
    return path


@functools.lru_cache(maxsize=16)
def _cached_feed(path: str) -> Feed:
    return load_feed(path)  # feeds are never mutated: `shifted` returns a copy


class LocalExchange:
    """A Binance-compatible exchange on 127.0.0.1.

    markets: core Markets or ccxt market dicts (default: the bundled sample markets).
    data: symbol -> CSV path (trades or candles) or Feed (default: bundled sample data).
    clock: market time (default: a stepped clock starting now); see `Clock`.
    origin: data timestamp placed at the clock's start, or within the hour before it (the
        replay moves by whole hours; default: the middle of each data set).
    accounts: AccountSpecs (default: one account with TEST_KEY / TEST_SECRET).
    """

    def __init__(self, markets: Iterable[Market | Mapping[str, Any]] | None = None,
                 data: Mapping[str, str | Path | Feed] | None = None, clock: Clock | None = None,
                 accounts: Iterable[AccountSpec] | None = None, origin: int | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        # the replay is shifted by whole hours (candles stay on their grid), so a stepped
        # clock starting on the hour puts the replay at the same data point whatever the
        # time of day: a run (and a test) sees the same book and trades every time
        self.clock = clock or Clock(start=wall_ms() // HOUR_MS * HOUR_MS)
        self.faults = Faults()
        self.engine = Engine(self.clock.now)
        self.hub = Hub(self)
        self.host, self.port = host, port
        data = dict(data or {})
        for m in markets if markets is not None else bundled_markets():
            market = m if isinstance(m, Market) else Market.from_ccxt(m)
            src = data.get(market.symbol) or bundled_data(market)
            if src is None:
                raise ValueError(f"no market data for {market.symbol}: pass data={{symbol: csv}}")
            feed = src if isinstance(src, Feed) else _cached_feed(str(src))
            self.engine.add_market(MarketSpec.from_market(market), feed.shifted(self.clock.start, origin))
        for spec in accounts if accounts is not None else [AccountSpec()]:
            self.add_account(spec)
        self.engine.listeners.append(self.hub.on_event)
        self.engine.fill_worse = lambda: float(self.faults.fill_worse_bps)
        self.engine.algo_first = lambda: bool(self.faults.algo_first)
        self.faults.on_drop = self._drop
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pump: asyncio.Task | None = None
        self._hand_orders = 0

    def __repr__(self) -> str:
        return f"LocalExchange(url={self.url!r}, markets={len(self.engine.spot) + len(self.engine.futures)})"

    # accounts and time

    def add_account(self, spec: AccountSpec) -> Account:
        return self.engine.add_account(spec.name, Credentials(spec.api_key, spec.secret), spec.spot,
                                       spec.futures, spec.leverage)

    def account(self, name: str = "test") -> Account:
        for acc in self.engine.accounts.values():
            if acc.name == name:
                return acc
        raise KeyError(f"no account {name!r}")

    @property
    def api_key(self) -> str:
        return next(iter(self.engine.accounts.values())).creds.api_key

    @property
    def secret(self) -> str:
        return next(iter(self.engine.accounts.values())).creds.secret

    def server_time(self) -> int:
        """The wall clock (market time, for a clock that `serves_time`) plus the skew fault:
        what `/time` answers and signed requests are checked against."""
        now = self.clock.now() if self.clock.serves_time else wall_ms()
        return now + int(self.faults.clock_skew_ms)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def step(self, ms: int) -> int:
        """Advance a stepped clock by `ms` and replay what happened; returns ticks replayed."""
        return self._call(self._advance, ms)

    def advance_to(self, ts: int) -> int:
        """Advance a stepped clock to market time `ts` and replay; returns ticks replayed."""
        return self._call(self._advance, max(0, ts - self.clock.now()))

    def _advance(self, ms: int) -> int:
        if ms:
            self.clock.step(ms)
        return self.engine.advance(self.clock.now())

    def place_by_hand(self, symbol: str, side: str, amount: Any, price: Any = None, *,
                      account: str = "test", client_id: str | None = None,
                      futures: bool = False) -> dict[str, Any]:
        """Place an order as a person would on the exchange's web page: no API call, the
        exchange's own client id ("web_" and a number) unless given; a limit order (GTC)
        with a price, else a market order. `symbol` is the exchange's id ("XRPETH").
        Returns the order as the REST API would; BinanceError if the exchange refuses it."""
        acc = self.account(account)
        self._hand_orders += 1
        params = {"symbol": symbol, "side": side.upper(), "quantity": str(amount),
                  "newClientOrderId": client_id or f"web_{self._hand_orders:06d}",
                  "newOrderRespType": "FULL"}
        if price is not None:
            params.update(type="LIMIT", price=str(price), timeInForce="GTC")
        else:
            params["type"] = "MARKET"
        order, fills, resp = self._call(self.engine.place, acc, params, futures)
        return fmt.futures_order(order) if futures else fmt.spot_order(order, fills, resp)

    def transfer(self, asset: str, amount: Any, *, account: str = "test", notify: bool = True,
                 futures: bool = False) -> dict[str, Any]:
        """A deposit (`amount` > 0) or withdrawal (< 0) of spot `asset` (or of the futures
        wallet), made outside the API as a person would. With `notify` the account's user
        stream gets the balance update Binance sends; without it the change is silent (as
        when that message is lost). Returns the new total; ValueError if it would go
        below zero."""
        return self._call(self._transfer, self.account(account), asset, Decimal(str(amount)),
                          notify, futures)

    def _transfer(self, acc: Account, asset: str, amount: Decimal, notify: bool,
                  futures: bool) -> dict[str, Any]:
        now = self.clock.now()
        if futures:
            if acc.available + amount < 0:
                raise ValueError(f"withdrawal of {-amount} exceeds the available {acc.available}")
            acc.wallet += amount
            if notify:
                self.engine._user(acc, True, fmt.account_update(acc, [], now, "DEPOSIT" if amount > 0 else "WITHDRAW"))
            return {"asset": acc.settle, "total": str(acc.wallet)}
        b = acc.balance(asset)
        if b.free + amount < 0:
            raise ValueError(f"withdrawal of {-amount} {asset} exceeds the free {b.free}")
        b.free += amount
        if notify:
            self.engine._user(acc, False, fmt.account_position(acc, (asset,), now))
        return {"asset": asset, "total": str(b.total)}

    def _drop(self, kind: str | None) -> int:
        return self._call(self.hub.drop, kind)

    def _call(self, fn: Any, *args: Any) -> Any:
        """Run `fn` on the server's loop (directly when already on it)."""
        loop = self._loop
        if loop is None or self._on_loop():
            return fn(*args)
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=30)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    # lifecycle

    async def start(self) -> "LocalExchange":
        self._loop = asyncio.get_running_loop()
        app = web.Application(middlewares=[rest.fault_middleware(self)])
        rest.add_routes(app, self)
        self._admin_routes(app)
        app.router.add_get("/{tail:.*}", self.hub.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if not self.clock.stepped:
            self._pump = asyncio.ensure_future(self._run_clock())
        return self

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        self.hub.drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _run_clock(self) -> None:
        while True:
            self.engine.advance(self.clock.now())
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> "LocalExchange":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def __enter__(self) -> "LocalExchange":
        """Run in a background thread with its own event loop."""
        started = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:  # reported to the starting thread
                errors.append(e)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=main, name="localexchange", daemon=True)
        self._thread.start()
        started.wait(30)
        if errors:
            raise errors[0]
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._thread = None

    # admin

    def _admin_routes(self, app: web.Application) -> None:
        async def state(request: web.Request) -> web.Response:
            return web.json_response({
                "url": self.url, "market_time": self.clock.now(), "server_time": self.server_time(),
                "stepped": self.clock.stepped, "websockets": len(self.hub.conns),
                "markets": sorted([s.spec.symbol for s in self.engine.spot.values()]
                                  + [s.spec.symbol for s in self.engine.futures.values()]),
                "accounts": [a.name for a in self.engine.accounts.values()]})

        async def faults(request: web.Request) -> web.Response:
            if request.method == "POST":
                try:
                    self.faults.update(await request.json())
                except (ValueError, TypeError) as e:
                    return web.json_response({"error": str(e)}, status=400)
            return web.json_response(self.faults.as_dict())

        async def clear(request: web.Request) -> web.Response:
            self.faults.clear()
            return web.json_response(self.faults.as_dict())

        async def drop(request: web.Request) -> web.Response:
            kind = request.query.get("kind")
            return web.json_response({"dropped": self.hub.drop(kind)})

        async def step(request: web.Request) -> web.Response:
            if not self.clock.stepped:
                return web.json_response({"error": "the clock is not stepped"}, status=400)
            body = await request.json()
            ticks = self._advance(int(body.get("ms", 0)))
            return web.json_response({"ticks": ticks, "market_time": self.clock.now()})

        app.router.add_get("/lx/state", state)
        app.router.add_route("*", "/lx/faults", faults)
        app.router.add_post("/lx/faults/clear", clear)
        app.router.add_post("/lx/faults/drop", drop)
        async def by_hand(request: web.Request) -> web.Response:
            body = await request.json()
            try:
                order = self.place_by_hand(body["symbol"], body["side"], body["amount"],
                                           body.get("price"), account=body.get("account", "test"),
                                           client_id=body.get("client_id"),
                                           futures=bool(body.get("futures")))
            except BinanceError as e:
                return web.json_response(e.body(), status=e.status)
            except (KeyError, TypeError, ValueError) as e:
                return web.json_response({"error": f"bad order: {e!r}"}, status=400)
            return web.json_response(order)

        async def transfer(request: web.Request) -> web.Response:
            body = await request.json()
            try:
                done = self.transfer(body["asset"], body["amount"],
                                     account=body.get("account", "test"),
                                     notify=bool(body.get("notify", True)),
                                     futures=bool(body.get("futures")))
            except (KeyError, TypeError, ValueError, ArithmeticError) as e:
                return web.json_response({"error": f"bad transfer: {e!r}"}, status=400)
            return web.json_response(done)

        app.router.add_post("/lx/step", step)
        app.router.add_post("/lx/orders", by_hand)
        app.router.add_post("/lx/transfer", transfer)
