"""What live mode needs to know of an exchange, as ccxt's unified API has it.

A `Venue` answers the questions whose answer differs between exchanges: how to name an
order by its client id, which error means "this order does not exist" and which only
"could not ask", when a request that got no answer can no longer be executed, where an
update carries the exchange's time. The base answers from ccxt's unified structures and
exceptions alone; a module per exchange overrides what that exchange does otherwise.
Live code asks its venue and never tests an exchange id.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import ccxt

from ...core.orders import Order

# how long after a request got no answer the exchange may still execute it, where the
# exchange does not say (no request expiry): beyond any plausible network delay
DEFAULT_SUBMIT_WINDOW = 60.0


@attrs.frozen(slots=True)
class AlgoReport:
    """What a report of a conditional order held by the exchange apart from its orders (an
    algo order) says: its `status` as the exchange names it, the exchange id of the order
    it placed when it fired (`child`, "" before) and its type."""

    status: str
    child: str = ""

    @property
    def fired(self) -> bool:
        """Whether it placed its order (whose own reports bring the fills and the end)."""
        return bool(self.child)

    @property
    def ended(self) -> str | None:
        """The order's end when the algo ended without placing an order ("canceled",
        "rejected"), else None."""
        if self.child:
            return None
        return {"CANCELED": "canceled", "CANCELLED": "canceled", "EXPIRED": "canceled",
                "REJECTED": "rejected", "FINISHED": "canceled"}.get(self.status)


@attrs.frozen(slots=True)
class Conditional:
    """A native conditional order as a report of it shows it (an order found open on the
    exchange): its planarpy type (`kind`, an OrderType value; "" for a type planarpy does
    not follow), its trigger (0 where the exchange does not report it: a trailing stop's
    stop on some venues), whether it fired and works as the order it became (a stop-limit
    resting at its limit), and a trailing stop's trail (a fraction of the price) and
    activation price."""

    kind: str
    trigger: float = 0.0
    fired: bool = False
    trail: float = 0.0
    activation: float = 0.0


@attrs.frozen(slots=True)
class Native:
    """How a conditional order is sent to the exchange itself: ccxt's create_order
    `type`, `price` and `params` (the trigger parameters)."""

    type: str
    price: float | None
    params: dict[str, Any]


class Venue:
    """ccxt-unified behaviour; subclasses hold one exchange's quirks."""

    def __init__(self, exchange_id: str) -> None:
        self.exchange_id = exchange_id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.exchange_id}>"

    # ---- the client ---------------------------------------------------------------
    def client_options(self) -> dict[str, Any]:
        """ccxt options this venue needs (the config's own options go on top)."""
        return {}

    def prepare(self, client: Any, url_overridden: bool) -> None:
        """Adjust a built client (after a URL override, when `url_overridden`)."""

    # ---- orders by client id ------------------------------------------------------
    def order_params(self, client_id: str) -> dict[str, Any]:
        """Params that give a new order its client id."""
        return {"clientOrderId": client_id}

    def by_client_id(self, client_id: str) -> dict[str, Any]:
        """Params of fetch_order / cancel_order (with id None) naming an order by client id."""
        return {"clientOrderId": client_id}

    def client_id(self, o: Mapping[str, Any]) -> str:
        """The client order id of a ccxt order or trade ("" if it has none)."""
        return str(o.get("clientOrderId") or "")

    # ---- what an error means ------------------------------------------------------
    def does_not_exist(self, e: BaseException) -> bool:
        """Whether a lookup's error is the exchange's definite "no such order" (and not
        a failure to ask: a timeout, a 5xx, a rate limit, a dropped connection)."""
        return isinstance(e, ccxt.OrderNotFound)

    def cancel_unknown(self, e: BaseException) -> bool:
        """Whether a cancel's error says there is no open order by that id (none, or one
        already closed): the order's state must then be looked up."""
        return isinstance(e, ccxt.OrderNotFound)

    def is_duplicate(self, e: BaseException) -> bool:
        """Whether an order was refused because its client id is in use (an earlier try
        of it got through)."""
        return False

    def is_ban(self, e: BaseException) -> bool:
        """Whether a rate-limit refusal is a ban, which every further request lengthens."""
        text = str(e).lower()
        return "banned" in text or " 418 " in text

    def retry_after(self, client: Any) -> float:
        """The seconds a rate-limited exchange asked us to wait (Retry-After), 1 by default."""
        headers = getattr(client, "last_response_headers", None) or {}
        value = headers.get("Retry-After") or headers.get("retry-after")
        try:
            return max(float(value), 0.0) if value is not None else 1.0
        except ValueError:
            return 1.0

    def submit_window(self, client: Any) -> float:
        """Seconds after a request's answer failed to come during which the exchange may
        still execute it: only after that does "does not exist" mean "never placed"."""
        return DEFAULT_SUBMIT_WINDOW

    # ---- updates ------------------------------------------------------------------
    def event_time(self, update: Mapping[str, Any]) -> int | None:
        """The exchange's time (ms) of an update (order, trade, balance, position), if any."""
        ts = update.get("timestamp")
        return int(ts) if ts is not None else None

    def balance_total(self, b: Mapping[str, Any]) -> Mapping[str, Any]:
        """Each currency's total in a ccxt balance, as the state keeps cash: on margin the
        wallet, with the positions' margins and without their unrealized pnl."""
        return b.get("total") or {}

    def position_side(self, o: Mapping[str, Any]) -> str | None:
        """"long" or "short" if an order or trade names the position it acts on (hedge
        mode), else None."""
        return None

    def position_margin(self, p: Mapping[str, Any]) -> float:
        """The margin an isolated ccxt position holds."""
        margin = p.get("initialMargin")
        if margin is None:
            margin = p.get("collateral")
        return float(margin or 0.0)

    # ---- conditional orders ---------------------------------------------------------
    def native(self, order: Order, market: Mapping[str, Any] | None = None) -> Native | None:
        """How to place the conditional `order` on the exchange itself, or None when the
        engine must hold its trigger and send the order when it fires (emulate it). The
        base emulates every type: what ccxt's unified trigger parameters mean differs
        between exchanges, so a venue module says what its exchange does natively.
        `market` is the client's market of the order (its filters), if loaded."""
        return None

    def conditional_holds_funds(self, market: Mapping[str, Any] | None = None) -> bool:
        """Whether a native conditional order of `market` holds funds (or margin) while it
        waits for its trigger, as a resting order does. The base assumes it does."""
        return True

    def replacement(self, order: Order) -> Native | None:
        """How to move the native conditional `order` in one request that cancels the old
        one and places it (ccxt's edit_order as the exchange's atomic cancel-replace), or
        None when the exchange has none: then the new one is placed first."""
        return None

    def replace_outcome(self, e: BaseException) -> tuple[bool, bool] | None:
        """What a cancel-replace that the exchange answered with a failure did, whatever
        ccxt class the answer came as: (the old order cancelled, the new one placed); None
        when `e` is not such an answer (a refusal of the whole request, or no answer)."""
        return None

    def can_replace(self, market: Mapping[str, Any]) -> bool:
        """Whether the exchange lets orders of `market` (ccxt's market structure) be
        cancel-replaced; when not, `replacement` is not used for them."""
        return True

    def conditional_params(self, order: Order) -> dict[str, Any]:
        """Params that name a native conditional order in fetch_order / cancel_order."""
        return {}

    def algo_params(self, derivative: bool) -> dict[str, Any] | None:
        """Params of fetch_open_orders that list the native conditional orders the
        exchange keeps apart from its orders (algo orders), or None where it lists them
        with the others."""
        return None

    def algo_report(self, o: Mapping[str, Any]) -> AlgoReport | None:
        """An algo order's report read (see `AlgoReport`), or None for an order's."""
        return None

    def conditional(self, o: Mapping[str, Any]) -> Conditional | None:
        """What a ccxt order (or algo order) report says of the conditional order it is
        (see `Conditional`), or None for a plain market or limit order. The base knows
        none: it places none natively, and ccxt's unified trigger fields mean different
        things on different exchanges."""
        return None

    # ---- leverage -----------------------------------------------------------------
    def leverage_error(self, leverage: float) -> str | None:
        """Why this venue cannot take `leverage` (beyond the market's limits), or None."""
        return None

    def leverage_arg(self, leverage: float) -> Any:
        """`leverage` as set_leverage must be given it."""
        return leverage
