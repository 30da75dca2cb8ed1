"""Event kinds: every state change in every mode is one of these.

A mode produces events (the sim from its matching, live from exchange messages, replay
from a trace), and `planarpy.core.apply` consumes them. The EventTrace stores the kind as a
small integer; the codes below are part of the trace format, so only ever append.
"""

from __future__ import annotations

KINDS: tuple[str, ...] = (
    "strategy_started",
    "strategy_stopped",
    "balance_updated",
    "position_updated",
    "order_created",
    "order_updated",
    "order_closed",
    "order_cancelled_local",
    "trade_created",
    "trade_emulated",
    "leverage_updated",
    "margin_updated",
    "ohlcv_updated",
    "order_error",
    "exchange_error",
    "connection_lost",
    "connection_restored",
    "sync_result",
    "request_sent",
    "response_received",
    "liquidation",
    "market_data",
    "clock_resynced",
    "exchange_message",
    "tick_overrun",
    "ticks_skipped",
    "risk_denied",
    "trading_state_changed",
    "risk_measured",
    "alert",
    "reconciled",
    "checkpoint",
    "checkpoint_restored",
    "shadow_metrics",
    "order_triggered",
    "trigger_moved",
    "trigger_late",
    "legs_covered",
    "risk_carried",
)

KIND_CODES: dict[str, int] = {k: i for i, k in enumerate(KINDS)}


def kind_code(kind: str) -> int:
    """The integer code of `kind`; ValueError naming the known kinds if there is none."""
    try:
        return KIND_CODES[kind]
    except KeyError:
        raise ValueError(f"unknown event kind {kind!r}; known kinds: {', '.join(KINDS)}") from None
