"""Faults a test can switch on while the exchange runs (Python API or `POST /lx/faults`).

| field | effect, as a client sees it |
|---|---|
| `http_status` (500, 502, 503, 429, 418) | REST answers that status (429/418 with Retry-After), the WebSocket API's trading requests that status with its error (5xx: -1007, outcome unknown) |
| `http_count` | ... for that many requests only (None: until cleared) |
| `http_path` | ... only for paths (WebSocket API: methods) containing this text (None: all) |
| `retry_after` | seconds in the Retry-After header of 429/418 |
| `delay_ms` | every REST and WebSocket API answer is delayed (a client timeout fires) |
| `ws_delay_ms` | every WebSocket frame is delayed |
| `user_lag_ms` | user-data events leave this long after the answer to the request that caused them (Binance's stream lags its answers, by a few ms to over 100 ms); 0: before the answer |
| `clock_skew_ms` | server time runs ahead (+) or behind (-) the wall clock: -1021 |
| `stall_public` / `stall_user` | market / user-data streams go silent, sockets stay open |
| `withhold_user` | user-data events are dropped (only a REST fetch shows a fill) |
| `duplicate_user` | every user-data event is sent twice |
| `reorder_user` | user-data events are sent in swapped pairs |
| `refuse_ws` | new WebSocket connections are refused (HTTP 503) |

`drop_websockets()` closes every open WebSocket at once (abnormal closure).
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
    retry_after: int = 1
    delay_ms: int = 0
    ws_delay_ms: int = 0
    user_lag_ms: int = 0
    clock_skew_ms: int = 0
    stall_public: bool = False
    stall_user: bool = False
    withhold_user: bool = False
    duplicate_user: bool = False
    reorder_user: bool = False
    refuse_ws: bool = False
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

    def take_http_fault(self, path: str) -> int | None:
        """The status a REST request to `path` must fail with now, counting it; or None."""
        status = self.http_status
        if status is None or (self.http_path and self.http_path not in path):
            return None
        if self.http_count is not None:
            if self.http_count <= 0:
                self.http_status = self.http_count = None
                return None
            self.http_count -= 1
        return status

    def drop_websockets(self, kind: str | None = None) -> int:
        """Close open WebSockets ("public", "user" or all); returns how many."""
        return self.on_drop(kind) if self.on_drop is not None else 0
