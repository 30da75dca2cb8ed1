"""Faults a test can switch on while the exchange runs (Python API or `POST /lx/faults`).

| field | effect, as a client sees it |
|---|---|
| `http_status` (500, 502, 503, 429, 418) | REST answers that status (429/418 with Retry-After), the WebSocket API's trading requests that status with its error (5xx: -1007, outcome unknown) |
| `http_count` | ... for that many requests only (None: until cleared) |
| `http_path` | ... only for paths (WebSocket API: methods) containing this text (None: all); "GET /api/v3/order" also names the method; a final "$" asks for the whole path ("POST /api/v3/order$": not cancelReplace) |
| `http_processed` | a 5xx comes after the request was executed (the answer is lost), not instead of it |
| `retry_after` | seconds in the Retry-After header of 429/418 |
| `delay_ms` | REST and WebSocket API requests are executed and answered this late (a client timeout fires; the request is executed all the same) |
| `delay_count`, `delay_path` | ... for that many requests only, or matching paths only (as `http_*`) |
| `ws_delay_ms` | every WebSocket frame is delayed |
| `user_lag_ms` | user-data events leave this long after the answer to the request that caused them (Binance's stream lags its answers, by a few ms to over 100 ms); 0: before the answer |
| `clock_skew_ms` | server time runs ahead (+) or behind (-) the wall clock: -1021 |
| `stall_public` / `stall_user` | market / user-data streams go silent, sockets stay open |
| `withhold_user` | user-data events are dropped (only a REST fetch shows a fill) |
| `duplicate_user` | every user-data event is sent twice |
| `reorder_user` | user-data events are sent in swapped pairs |
| `refuse_ws` | new WebSocket connections are refused (HTTP 503) |
| `algo_first` | a USD-M algo order that fires reports TRIGGERED and FINISHED before the order it placed reports anything (Binance does not promise the order of the two streams' events) |
| `no_cancel_replace` | spot symbols say `cancelReplaceAllowed` false in exchangeInfo and `POST /api/v3/order/cancelReplace` is refused (-1013), as for a symbol where Binance does not allow it (a venue without an atomic cancel-replace) |
| `reply_before_fill` | a new order's answer (REST or WebSocket API) is the order as the exchange took it, before it matched: NEW, nothing executed, no fills (its fills are told by the user data and lookups only), as Binance's USD-M answers a market order by default (ACK) |
| `fill_worse_bps` | fills that take the market's liquidity are priced this many basis points against the taker (an exchange that fills worse than its book shows) |

`drop_websockets()` closes every open WebSocket at once (abnormal closure).

A submit whose outcome the client cannot know, as Binance has it: a 5xx with the order
executed (`http_status` 503, `http_processed`) or not (`http_processed` false); a stall
past the client's timeout with the order executed late, then 5xx on the lookups
(`delay_ms` 800, `delay_path` "POST /api/v3/order", `delay_count` 1, and `http_status`
503 with `http_path` "GET /api/v3/order").
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import attrs

_HTTP_STATUSES = (500, 502, 503, 504, 429, 418)


@attrs.define(slots=True, eq=False)
class Faults:
    http_status: int | None = None
    http_count: int | None = None
    http_path: str | None = None
    http_processed: bool = False
    retry_after: int = 1
    delay_ms: int = 0
    delay_count: int | None = None
    delay_path: str | None = None
    ws_delay_ms: int = 0
    user_lag_ms: int = 0
    clock_skew_ms: int = 0
    stall_public: bool = False
    stall_user: bool = False
    withhold_user: bool = False
    duplicate_user: bool = False
    reorder_user: bool = False
    refuse_ws: bool = False
    fill_worse_bps: float = 0.0
    algo_first: bool = False
    no_cancel_replace: bool = False
    reply_before_fill: bool = False
    on_drop: Callable[[str | None], int] | None = attrs.field(default=None, repr=False)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Set fields by name (unknown names raise ValueError)."""
        names = {f.name for f in attrs.fields(Faults)} - {"on_drop"}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(names)}")
        status = changes.get("http_status")
        if status is not None and int(status) not in _HTTP_STATUSES:
            raise ValueError(f"http_status must be one of {_HTTP_STATUSES}")
        for k, v in changes.items():
            setattr(self, k, v)

    def clear(self) -> None:
        for f in attrs.fields(Faults):
            if f.name != "on_drop":
                setattr(self, f.name, f.default)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in attrs.fields(Faults) if f.name != "on_drop"}

    def take_http_fault(self, path: str, method: str = "") -> int | None:
        """The status a request (`method` `path`, or a WebSocket API method) must fail
        with now, counting it; or None."""
        status = self.http_status
        if status is None or not _matches(self.http_path, method, path):
            return None
        if self.http_count is not None:
            if self.http_count <= 0:
                self.http_status = self.http_count = None
                return None
            self.http_count -= 1
        return status

    def take_delay(self, path: str, method: str = "") -> float:
        """The seconds a request must wait before it is executed, counting it."""
        if not self.delay_ms or not _matches(self.delay_path, method, path):
            return 0.0
        if self.delay_count is not None:
            if self.delay_count <= 0:
                self.delay_ms, self.delay_count = 0, None
                return 0.0
            self.delay_count -= 1
        return self.delay_ms / 1000

    def drop_websockets(self, kind: str | None = None) -> int:
        """Close open WebSockets ("public", "user" or all); returns how many."""
        return self.on_drop(kind) if self.on_drop is not None else 0


def _matches(rule: str | None, method: str, path: str) -> bool:
    """Whether a request matches a fault's path rule: text the path contains (the whole
    path with a final "$"), optionally after a method ("GET /api/v3/order"); no rule
    matches everything."""
    if not rule:
        return True
    verb, _, rest = rule.partition(" ")
    if rest and verb.isupper():
        return verb == method and _within(rest, path)
    return _within(rule, path)


def _within(text: str, path: str) -> bool:
    return path == text[:-1] if text.endswith("$") else text in path
