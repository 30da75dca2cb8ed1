"""WebSocket side: market streams, the spot WebSocket API user stream, futures listen keys.

Paths (any host prefix is accepted): `.../ws`, `.../ws/<n>`, `.../stream...` carry market
streams, subscribed with `{"method": "SUBSCRIBE", "params": [...]}` and routed by stream
name; a path under `/fstream` or ending in `/public/ws`, `/market/ws` is USD-M, anything
else spot. `.../ws-api/v3` is the spot WebSocket API and `.../ws-fapi/v1` the USD-M one:
signed `order.place`, `order.status`, `order.cancel` and `openOrders.status` run the REST
handlers of the same names, and on spot `userDataStream.subscribe.signature` turns on user
data. A `listenKey` query parameter or a `/ws/<listenKey>` path opens that key's futures
user-data stream.
"""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import msgspec
from aiohttp import WSMsgType, web

from . import formats as fmt
from . import rest
from .auth import BinanceError, check_signature, check_timestamp, lookup_key
from .engine import MarketEvent, MarketState, UserEvent
from .replay import num

if TYPE_CHECKING:
    from .accounts import Account
    from .server import LocalExchange

_FUTURES_HINTS = ("/fstream", "/public/ws", "/market/ws", "/fapi")
# `http_status` faults as the WebSocket API answers them (5xx: the outcome is unknown)
_UNKNOWN = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
_FAULTS = {429: BinanceError(-1003, rest.TOO_MANY, 429),
           418: BinanceError(-1003, "Way too many requests; IP(127.0.0.1) banned.", 418)}
# WebSocket API methods that are REST endpoints by another name: (method, futures) -> handler
_TRADING = {("order.place", False): rest.spot_new_order, ("order.status", False): rest.spot_get_order,
            ("order.cancel", False): rest.spot_cancel, ("openOrders.status", False): rest.spot_open_orders,
            ("order.place", True): rest.futures_new_order, ("order.status", True): rest.futures_get_order,
            ("order.cancel", True): rest.futures_cancel,
            ("openOrders.status", True): rest.futures_open_orders}


@attrs.define(slots=True, eq=False)
class Conn:
    ws: web.WebSocketResponse
    request: web.Request
    kind: str  # "public", "user" or "wsapi"
    futures: bool
    streams: set[str] = attrs.field(factory=set)
    account: "Account | None" = None
    sub_id: int | None = None
    queue: asyncio.Queue = attrs.field(factory=asyncio.Queue)
    held: Any = None
    lagged: asyncio.Queue | None = None  # (due, frame) of user data sent `user_lag_ms` late
    lagging: int = 0  # frames in `lagged` or held by the lagger: later frames queue behind


@attrs.define(slots=True, eq=False)
class DepthState:
    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]
    last_u: int


@attrs.define(slots=True, eq=False)
class Hub:
    lx: "LocalExchange"
    conns: set[Conn] = attrs.field(factory=set)
    listen_keys: dict[str, "Account"] = attrs.field(factory=dict)
    depth: dict[tuple[bool, str], DepthState] = attrs.field(factory=dict)
    sent: int = 0
    _sub_ids: int = 0

    # connections

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.lx.faults.refuse_ws:
            return web.Response(status=503, text="Service Unavailable")
        path = request.path
        key = request.query.get("listenKey") or _path_key(path, self.listen_keys)
        if key is not None and key not in self.listen_keys:
            return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=1 << 22)
        await ws.prepare(request)
        if key is not None:
            conn = Conn(ws, request, "user", True, account=self.listen_keys[key])
        elif "/ws-api" in path or "/ws-fapi" in path:
            conn = Conn(ws, request, "wsapi", "/ws-fapi" in path)
        else:
            conn = Conn(ws, request, "public", any(h in path for h in _FUTURES_HINTS))
        self.conns.add(conn)
        writers = [asyncio.ensure_future(self._writer(conn))]
        if conn.kind != "public":
            conn.lagged = asyncio.Queue()
            writers.append(asyncio.ensure_future(self._lagger(conn)))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._incoming(conn, msg.data)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self.conns.discard(conn)
            for w in writers:
                w.cancel()
        return ws

    async def _writer(self, conn: Conn) -> None:
        faults = self.lx.faults
        while True:
            frame = await conn.queue.get()
            if faults.ws_delay_ms:
                await asyncio.sleep(faults.ws_delay_ms / 1000)
            if faults.stall_public if conn.kind == "public" else faults.stall_user:
                continue  # a silent stall: the socket stays open, nothing arrives
            if conn.ws.closed:
                return
            try:
                await conn.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return
            self.sent += 1

    async def _lagger(self, conn: Conn) -> None:
        """Moves lagged user data to the writer when due, in the order it was made."""
        loop = asyncio.get_running_loop()
        while True:
            due, frame = await conn.lagged.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            conn.queue.put_nowait(frame)
            conn.lagging -= 1

    def drop(self, kind: str | None = None) -> int:
        """Abort matching connections at the TCP level (the client sees an abnormal close)."""
        victims = [c for c in self.conns if kind is None
                   or (c.kind == "public") == (kind == "public")]
        for c in victims:
            transport = c.request.transport
            if transport is not None:
                transport.abort()
            self.conns.discard(c)
        return len(victims)

    def _send(self, conn: Conn, payload: Any) -> None:
        conn.queue.put_nowait(msgspec.json.encode(payload).decode())

    async def _incoming(self, conn: Conn, data: str) -> None:
        try:
            msg = msgspec.json.decode(data)
        except msgspec.DecodeError:
            self._send(conn, {"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
            return
        if not isinstance(msg, dict):
            return
        if conn.kind == "wsapi":
            delay = self.lx.faults.take_delay(str(msg.get("method")))
            if delay:  # a slow answer, as for REST (requests queue behind it)
                await asyncio.sleep(delay)
            self._wsapi(conn, msg)
            return
        method, params, rid = msg.get("method"), msg.get("params") or [], msg.get("id")
        if method == "SUBSCRIBE":
            for name in params:
                self._subscribe(conn, str(name))
            self._send(conn, {"result": None, "id": rid})
        elif method == "UNSUBSCRIBE":
            conn.streams.difference_update(str(p) for p in params)
            self._send(conn, {"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            self._send(conn, {"result": sorted(conn.streams), "id": rid})
        else:
            self._send(conn, {"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"},
                              "id": rid})

    def _subscribe(self, conn: Conn, name: str) -> None:
        conn.streams.add(name)
        symbol, _, channel = name.partition("@")
        if channel.startswith("depth"):
            st = self._state(conn.futures, symbol)
            if st is not None and (conn.futures, st.spec.id) not in self.depth:
                bids, asks = st.book.depth(1000)
                self.depth[(conn.futures, st.spec.id)] = DepthState(dict(bids), dict(asks), st.book.version)

    def _state(self, futures: bool, lower_id: str) -> MarketState | None:
        markets = self.lx.engine.futures if futures else self.lx.engine.spot
        return markets.get(lower_id.upper())

    # the WebSocket API: trading requests and spot user data

    def _wsapi(self, conn: Conn, msg: dict[str, Any]) -> None:
        rid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
        try:
            handler = _TRADING.get((method, conn.futures))
            if handler is not None:  # faults hit trading requests, not the user-data login
                fault = self.lx.faults.take_http_fault(str(method))
                if fault is not None and fault in _FAULTS:
                    raise _FAULTS[fault]
                flat = _flat(params)
                if fault is not None:  # 5xx: executed (the answer lost) or not
                    if self.lx.faults.http_processed:
                        handler(self.lx, flat, self._signed(params, flat))
                    raise BinanceError(-1007, _UNKNOWN, fault)
                result = handler(self.lx, flat, self._signed(params, flat))
            elif method == "userDataStream.subscribe.signature" and not conn.futures:
                result = self._login(conn, params)
            elif method == "userDataStream.unsubscribe":
                conn.account, conn.sub_id, result = None, None, {}
            elif method == "ping":
                result = {}
            elif method == "time":
                result = {"serverTime": self.lx.server_time()}
            else:
                raise BinanceError(-1100, f"Unsupported method '{method}'.")
        except BinanceError as e:
            self._send(conn, {"id": rid, "status": e.status, "error": e.body()})
            return
        self._send(conn, {"id": rid, "status": 200, "result": result, "rateLimits": []})

    def _signed(self, params: dict[str, Any], flat: dict[str, str]) -> "Account":
        """The account whose key signed `params` (the WebSocket API signs the sorted
        parameters, the key included, as one query string)."""
        creds = lookup_key({a.creds.api_key: a.creds for a in self.lx.engine.accounts.values()},
                           params.get("apiKey"))
        payload = "&".join(f"{k}={flat[k]}" for k in sorted(flat))
        check_signature(creds, payload, params.get("signature"))
        check_timestamp(flat, self.lx.server_time())
        return self.lx.engine.accounts[creds.api_key]

    def _login(self, conn: Conn, params: dict[str, Any]) -> dict[str, Any]:
        conn.account = self._signed(params, _flat(params))
        self._sub_ids += 1
        conn.sub_id = self._sub_ids
        return {"subscriptionId": conn.sub_id}

    def new_listen_key(self, account: "Account") -> str:
        for key, acc in self.listen_keys.items():
            if acc is account:
                return key
        key = secrets.token_hex(32)
        self.listen_keys[key] = account
        return key

    # engine events

    def on_event(self, event: object) -> None:
        if isinstance(event, UserEvent):
            self._user_event(event)
        elif isinstance(event, MarketEvent):
            self._market_event(event)

    def _user_event(self, ev: UserEvent) -> None:
        faults = self.lx.faults
        if faults.withhold_user:
            return
        for conn in list(self.conns):
            if conn.account is not ev.account or (conn.kind == "user") != ev.futures:
                continue
            if conn.kind == "wsapi" and conn.sub_id is None:
                continue
            frame = ev.payload if conn.kind == "user" else {"subscriptionId": conn.sub_id, "event": ev.payload}
            if faults.reorder_user and conn.held is None:
                conn.held = frame
                continue
            for _ in range(2 if faults.duplicate_user else 1):
                self._send_user(conn, frame)
            if conn.held is not None:
                self._send_user(conn, conn.held)
                conn.held = None

    def _send_user(self, conn: Conn, payload: Any) -> None:
        lag = self.lx.faults.user_lag_ms
        if conn.lagged is None or (not lag and not conn.lagging):
            self._send(conn, payload)
            return
        due = asyncio.get_running_loop().time() + lag / 1000
        conn.lagging += 1
        conn.lagged.put_nowait((due, msgspec.json.encode(payload).decode()))

    def _market_event(self, ev: MarketEvent) -> None:
        st, futures = ev.state, ev.state.spec.futures
        lower = st.spec.id.lower()
        depth_frame = self._depth_frame(st) if (futures, st.spec.id) in self.depth else None
        cache: dict[str, Any] = {}
        subscribed = False
        for conn in list(self.conns):
            if conn.kind != "public" or conn.futures != futures:
                continue
            for name in conn.streams:
                symbol, _, channel = name.partition("@")
                if symbol != lower:
                    continue
                subscribed |= channel.startswith("depth")
                if name not in cache:
                    cache[name] = self._frame(st, ev.tick, channel, depth_frame)
                if cache[name] is not None:
                    self._send(conn, cache[name])
        if not subscribed:
            self.depth.pop((futures, st.spec.id), None)

    def _frame(self, st: MarketState, tick: int | None, channel: str, depth_frame: Any) -> Any:
        spec, feed, futures = st.spec, st.feed, st.spec.futures
        now = int(feed.ts[tick]) if tick is not None else self.lx.clock.now()
        if channel.startswith("depth"):
            rest = channel[5:].split("@")[0]
            if rest.isdigit():
                bids, asks = st.book.depth(int(rest))
                return {"lastUpdateId": st.book.version, "bids": _levels(bids), "asks": _levels(asks)}
            return depth_frame
        if channel == "bookTicker":
            bids, asks = st.book.depth(1)
            b, a = (bids or [(0, 0)])[0], (asks or [(0, 0)])[0]
            frame = {"u": st.book.version, "s": spec.id, "b": fmt.s8(b[0]), "B": fmt.s8(b[1]),
                     "a": fmt.s8(a[0]), "A": fmt.s8(a[1])}
            if futures:
                frame = {"e": "bookTicker", "E": now, "T": now, **frame}
            return frame
        if tick is None:
            return None
        if channel in ("trade", "aggTrade"):
            p, q, m = num(feed.price[tick]), num(feed.qty[tick]), bool(feed.buyer_maker[tick])
            if channel == "trade":
                return {"e": "trade", "E": now, "T": now, "s": spec.id, "t": tick + 1, "p": p, "q": q,
                        "m": m, "M": True}
            return {"e": "aggTrade", "E": now, "s": spec.id, "a": tick + 1, "p": p, "q": q,
                    "f": tick + 1, "l": tick + 1, "T": now, "m": m, "M": True}
        if channel.startswith("kline_"):
            interval = fmt.INTERVALS.get(channel[6:])
            rows = feed.klines(interval, now, limit=1) if interval else []
            if not rows:
                return None
            r = rows[-1]
            return {"e": "kline", "E": now, "s": spec.id, "k": {
                "t": r[0], "T": r[6], "s": spec.id, "i": channel[6:], "f": 0, "L": 0, "o": r[1],
                "c": r[4], "h": r[2], "l": r[3], "v": r[5], "n": r[8], "x": False, "q": r[7],
                "V": r[9], "Q": r[10], "B": "0"}}
        if channel in ("ticker", "miniTicker"):
            s = feed.stats(now)
            frame = {"e": "24hrTicker" if channel == "ticker" else "24hrMiniTicker", "E": now,
                     "s": spec.id, "c": num(s["last"]), "o": num(s["open"]), "h": num(s["high"]),
                     "l": num(s["low"]), "v": num(s["volume"]), "q": num(s["quote"])}
            if channel == "ticker":
                bids, asks = st.book.depth(1)
                b, a = (bids or [(0, 0)])[0], (asks or [(0, 0)])[0]
                change = s["last"] - s["open"]
                frame.update({"p": num(change), "P": f"{100 * change / s['open']:.3f}",
                              "w": num(s["quote"] / s["volume"] if s["volume"] else s["last"]),
                              "x": num(s["prev"]), "Q": num(s["last_qty"]), "b": fmt.s8(b[0]),
                              "B": fmt.s8(b[1]), "a": fmt.s8(a[0]), "A": fmt.s8(a[1]),
                              "O": s["open_time"], "C": now, "F": s["first"], "L": s["last_id"],
                              "n": s["count"]})
            return frame
        return None

    def _depth_frame(self, st: MarketState) -> dict[str, Any] | None:
        state = self.depth[(st.spec.futures, st.spec.id)]
        bids, asks = st.book.depth(1000)
        nb, na = dict(bids), dict(asks)
        db = _diff(state.bids, nb)
        da = _diff(state.asks, na)
        if not db and not da:
            return None
        now = self.lx.clock.now()
        frame = {"e": "depthUpdate", "E": now, "s": st.spec.id, "U": state.last_u + 1,
                 "u": st.book.version, "b": _levels(db), "a": _levels(da)}
        if st.spec.futures:
            frame["T"] = now
            frame["pu"] = state.last_u
        state.bids, state.asks, state.last_u = nb, na, st.book.version
        return frame


def _flat(params: dict[str, Any]) -> dict[str, str]:
    """WebSocket API parameters as the strings they are signed as (JSON true -> "true")."""
    return {k: ("true" if v else "false") if isinstance(v, bool) else str(v)
            for k, v in params.items() if k != "signature"}


def _diff(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal]) -> list[tuple[Decimal, Decimal]]:
    out = [(p, q) for p, q in new.items() if old.get(p) != q]
    out += [(p, Decimal(0)) for p in old if p not in new]
    return out


def _levels(levels: list[tuple[Decimal, Decimal]]) -> list[list[str]]:
    return [[fmt.s8(p), fmt.s8(q)] for p, q in levels]


def _path_key(path: str, keys: dict[str, Any]) -> str | None:
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last if last in keys else None
