"""A run with conditional orders replays to the same state: triggers, trailing moves,
OCO groups, amendments and cancellations come back from the trace exactly."""

from planarpy import call
from planarpy.trace import EventTrace, iter_events, replay_from_trace

from simkit import SPOT, run

SYM = SPOT.symbol
ROWS = [(100.0, 101.0, 99.0, 100.0, 1e6)] * 3 + [
    (100, 104, 99, 104, 1e6), (104, 108, 103, 107, 1e6), (107, 107, 96, 97, 1e6),
    (97, 98, 96, 97, 1e6), (97, 98, 96, 97, 1e6)]


def script():
    def protect(s):
        call(s, "stop_order", SYM, 1.0, 95.0)
        call(s, "oco_order", SYM, 1.0, price=120.0, stop=90.0)
        call(s, "trailing_stop_order", SYM, 1.0, percent=0.05)
        return call(s, "bracket_order", SYM, 1.0, price=97.0, stop_loss=90.0, take_profit=99.0)

    return {0: lambda s: call(s, "market_order", SYM, 3.0, side="buy"),
            1: protect,
            3: lambda s: call(s, "amend_stop", SYM, "sim-2", 98.0)}


def test_conditional_orders_replay_exactly(tmp_path):
    with EventTrace.open(tmp_path / "t", strategy="Scripted", exchange="test") as trace:
        r = run(script(), ROWS, recorder=trace)
    s = r.strategy
    kinds = [e["kind"] for e in iter_events(tmp_path / "t")]
    assert {"order_triggered", "trigger_moved"} <= set(kinds)
    report = replay_from_trace(s, tmp_path / "t")
    assert report.ok, str(report)
    live, replayed = s.asset(SYM), report.state.assets[SYM]
    shape = lambda ai: sorted((o.id, o.type.value, o.trigger, o.group, o.triggered,
                               o.committed, o.legs) for o in ai.orders.values())
    assert shape(replayed) == shape(live) and shape(live)
    assert replayed.committed == live.committed and replayed.balance == live.balance
    assert report.state.trades == s.state.trades
    # by hand: the trailing stop (sim-5) trails the highs to 108 x 0.95 = 102.6; in candle 5
    # (low 96) it fires first (placed before the amended stop, both stops), then the stop
    # amended to 98 (sim-7), then the bracket's limit entry buys at 97; its exits (an OCO
    # pair) and the first OCO pair stay open
    assert [(t.order_id, t.price) for t in s.trades[1:]] == [
        ("sim-5", 102.6), ("sim-7", 98.0), ("sim-6", 97.0)]
    assert sorted(o.type.value for o in live.orders.values()) == [
        "limit", "limit", "stop_market", "stop_market"]
    assert live.committed == 2.0 and live.balance == 2.0
