"""Accounting invariants of the matching engine under random order flow (hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planarpy.localexchange import AccountSpec, BinanceError, Clock, LocalExchange

SPOT, PERP = "XRPETH", "XRPUSDT"
T0 = 1_700_000_400_000 // 3_600_000 * 3_600_000
START_SPOT = {"ETH": Decimal("5"), "XRP": Decimal("3000"), "BTC": Decimal("0")}
START_FUT = Decimal("2000")

action = st.one_of(
    *[st.tuples(st.just("place"), st.integers(0, 1), st.booleans(), st.sampled_from(["BUY", "SELL"]),
              st.sampled_from(["MARKET", "GTC", "IOC", "FOK", "POST"]), st.integers(1, 60),
              st.integers(-40, 40), st.booleans())] * 3,
    st.tuples(st.just("cancel"), st.integers(0, 1), st.integers(0, 30)),
    st.tuples(st.just("step"), st.integers(1, 240)),
)


def exchange() -> LocalExchange:
    specs = [AccountSpec(n, f"key-{n}", f"secret-{n}", {k: str(v) for k, v in START_SPOT.items()},
                         str(START_FUT), leverage=5 + 45 * i) for i, n in enumerate("ab")]
    from planarpy.localexchange.server import bundled_markets
    markets = [m for m in bundled_markets() if m.symbol in ("XRP/ETH", "XRP/USDT:USDT")]
    return LocalExchange(markets=markets, clock=Clock(start=T0), accounts=specs)


def play(lx: LocalExchange, actions: list) -> None:
    eng = lx.engine
    accounts = list(eng.accounts.values())
    placed: list = []
    for a in actions:
        try:
            if a[0] == "place":
                _, who, fut, side, kind, size, offset, reduce = a
                stt = eng.futures[PERP] if fut else eng.spot[SPOT]
                ref, spec = stt.book.ref, stt.spec
                qty = spec.step * size * (10 if fut else 5)
                p = {"symbol": spec.id, "side": side, "quantity": str(qty)}
                if kind == "MARKET":
                    p["type"] = "MARKET"
                else:
                    price = spec.round_price(ref + stt.book.spacing * offset / 4)
                    p.update(type="LIMIT_MAKER" if kind == "POST" and not fut else "LIMIT",
                             price=str(max(price, spec.tick)))
                    if p["type"] == "LIMIT":
                        p["timeInForce"] = "GTX" if kind == "POST" else kind
                if fut and reduce:
                    p["reduceOnly"] = "true"
                placed.append(eng.place(accounts[who], p, fut)[0])
            elif a[0] == "cancel" and placed:
                o = placed[a[2] % len(placed)]
                eng.cancel(o.account, {"symbol": o.spec.id, "orderId": str(o.id)}, o.spec.futures)
            elif a[0] == "step":
                lx.step(a[1] * 60_000)
        except BinanceError:
            pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, max_size=40))
def test_nothing_created_or_lost(actions):
    """Balances + fees = start + traded for every account and asset; nothing negative; locks match orders."""
    lx = exchange()
    play(lx, actions)
    eng = lx.engine
    for acc in eng.accounts.values():
        traded = {k: Decimal(0) for k in START_SPOT}
        pnl = Decimal(0)
        for t in eng.trades[acc.name]:
            if t.spec.futures:
                pnl += t.realized_pnl
                continue
            sign = 1 if t.buyer else -1
            traded[t.spec.base] += sign * t.qty
            traded[t.spec.quote] -= sign * t.quote
        for asset, start in START_SPOT.items():
            b = acc.balance(asset)
            assert b.free >= 0 and b.locked >= 0, (asset, b)
            assert b.total + acc.fees_paid.get(asset, 0) == start + traded[asset], asset
        assert acc.wallet + acc.fees_paid.get("USDT", 0) == START_FUT + pnl
        assert acc.wallet >= 0 and acc.order_margin >= 0 and acc.available >= 0
        assert all(p.margin >= 0 for p in acc.positions.values())
        open_orders = [o for o in eng.orders.values() if o.account is acc and o.is_open]
        for asset in START_SPOT:
            held = sum((o.reserved for o in open_orders if not o.spec.futures
                        and (o.spec.quote if o.buy else o.spec.base) == asset), Decimal(0))
            assert acc.balance(asset).locked == held, asset
        assert acc.order_margin == sum((o.reserved for o in open_orders if o.spec.futures), Decimal(0))
