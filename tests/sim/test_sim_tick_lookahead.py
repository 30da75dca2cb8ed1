"""A tick that reads candles after its own is caught in sim (LookAheadError), by a second
run in which each tick sees its candles up to `self.i` only; a causal tick passes."""

from __future__ import annotations

import pytest

from planarpy import OHLCV, LookAheadError, SimConfig, Strategy, backtest, call
from planarpy.modes.sim import lookahead


class Peek(Strategy):
    """Buys when the close two candles later is higher (clamped at the data's end, so the
    backtest itself never fails): the look-ahead the README's promise forbids."""
    exchange = "binance"
    quote = "BTC"
    timeframe = "5m"
    universe = ("ETH/BTC",)

    def later(self, ai):
        return ai.ohlcv.close.item(min(self.i + 2, len(ai.ohlcv) - 1))

    def tick(self, ts):
        ai = self.assets[0]
        now, later = ai.ohlcv.close.item(self.i), self.later(ai)
        if ai.free_balance < ai.market.min_amount and later > now * 1.002:
            call(self, "market_order", ai, ai.floor_amount(0.9 * self.free_cash / now), side="buy")
        elif ai.free_balance >= ai.market.min_amount and later < now:
            call(self, "market_order", ai, ai.floor_amount(ai.free_balance), side="sell")


class PeekUnclamped(Peek):
    def later(self, ai):
        return ai.ohlcv.close.item(self.i + 1) if self.i + 1 < 5760 else ai.ohlcv.close.item(self.i)


class Last(Peek):
    """Compares with the last close of the whole data set."""
    def later(self, ai):
        return float(ai.ohlcv.close[-1])


class Honest(Peek):
    def later(self, ai):
        return ai.ohlcv.close.item(self.i) * 1.003 if self.i % 7 == 0 else ai.ohlcv.close.item(self.i - 1)


@pytest.fixture(autouse=True)
def project(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)


@pytest.mark.parametrize("cls", [Peek, PeekUnclamped, Last])
def test_a_tick_reading_later_candles_is_caught(cls):
    with pytest.raises(LookAheadError, match=r"tick of \w+ looks ahead: run again") as e:
        backtest(cls)
    assert "`tick` may read candles <= self.i only" in str(e.value)


def test_without_the_check_the_peek_trades_silently():
    """What the check prevents: a backtest of decisions no live run could make."""
    r = backtest(Peek, config=SimConfig(check_lookahead=False))
    assert len(r.trades) > 100


def test_a_causal_tick_passes_and_the_check_changes_nothing():
    checked = backtest(Honest)
    unchecked = backtest(Honest, config=SimConfig(check_lookahead=False))
    assert len(checked.trades) > 20
    assert checked.trades == unchecked.trades and (checked.equity == unchecked.equity).all()


def test_the_second_run_is_bounded(monkeypatch):
    """The check runs over at most TICK_CHECK candles of ticks, however long the data."""
    seen = []
    real = lookahead.check_tick
    monkeypatch.setattr(lookahead, "TICK_CHECK", 100)

    def spy(full, cut, rerun):
        seen.append(rerun(cut))
        return real(full, cut, rerun)

    monkeypatch.setattr("planarpy.modes.sim.run.check_tick", spy)
    backtest(Honest)
    assert len(seen[0].times) <= 100 + 1


class Reads(Honest):
    """Records what its tick sees of the candles in the blind second run."""
    seen: list = []

    def tick(self, ts):
        o = self.assets[0].ohlcv
        if len(o) < 5000:  # the blind run: the whole data is longer
            type(self).seen.append((self.i, isinstance(o, OHLCV), len(o), len(o.close),
                                    len(o[1:]), o.close.item(-1)))
        super().tick(ts)


def test_the_blind_run_shows_each_tick_an_ohlcv_up_to_its_candle():
    """The columns are cut only when a tick reads them; what it reads is still an OHLCV
    of the candles up to its own, whole again between ticks."""
    Reads.seen = []
    r = backtest(Reads, config=SimConfig())
    closes = r.strategy.assets[0].ohlcv.close
    assert len(Reads.seen) > 100
    for i, is_ohlcv, n, n_close, n_sliced, last in Reads.seen:
        assert is_ohlcv and n == n_close == i + 1 and n_sliced == i
        assert last == closes[i]
