"""Each indicator of planarpy.indicators against a plain-Python formula written here (and
the window ones against TA-Lib's function of the same definition), to 1e-9 relative, on
the bundled candles and on a random walk with a trend and a crash.

"Relative" is to the value, or to the indicator's typical size (the median of its
absolute values) where the value is smaller: MACD, OBV and the like pass through 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from planarpy import OHLCV
from planarpy import indicators as ind
from planarpy.data.sources import load_ohlcv

talib = pytest.importorskip("talib", reason="the recursive indicators need TA-Lib: "
                                            "pip install 'planarpy[talib]'")

RTOL = 1e-9


def walk(n: int = 3000, seed: int = 11) -> OHLCV:
    """A volatile random walk, 30x up then a 60% crash, on an 8-decimal grid."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.001, 0.01, n)
    r[n // 2] = -0.9
    close = np.round(0.05 * np.exp(np.cumsum(r)), 8)
    open_ = np.r_[close[0], close[:-1]]
    spread = np.round(np.abs(rng.normal(0, 0.003, n)) * close, 8)
    high, low = np.maximum(open_, close) + spread, np.minimum(open_, close) - spread
    volume = np.round(rng.uniform(0, 5000, n), 3)
    volume[rng.integers(0, n, n // 50)] = 0.0  # some candles without trades
    ts = 1_600_000_000_000 + 60_000 * np.arange(n, dtype=np.int64)
    return OHLCV(ts, open_, high, low, close, volume)


DATA = {
    "ETH/BTC 5m": lambda: load_ohlcv("binance", "ETH/BTC", "5m"),
    "XRP/USDT perp 5m": lambda: load_ohlcv("binanceusdm", "XRP/USDT:USDT", "5m"),
    "walk": walk,
}


@pytest.fixture(params=list(DATA), scope="module")
def candles(request) -> OHLCV:
    return DATA[request.param]()


def assert_agrees(got, want) -> None:
    """NaN where the reference is NaN; elsewhere within RTOL of it (see the docstring)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want)), \
        f"NaN at {np.flatnonzero(np.isnan(got) != np.isnan(want))[:5]}"
    ok = ~np.isnan(want)
    if not ok.any():
        return
    scale = np.maximum(np.abs(want[ok]), np.median(np.abs(want[ok])))
    err = np.abs(got[ok] - want[ok]) / np.where(scale > 0, scale, 1.0)
    assert err.max() <= RTOL, f"off by {err.max():.3g} at {np.flatnonzero(ok)[err.argmax()]}"


def windows(x, n):
    """Reference rolling: fn(window) for each full window, NaN before."""
    def apply(fn):
        return [math.nan] * (n - 1) + [fn(x[i - n + 1:i + 1]) for i in range(n - 1, len(x))]
    return apply


def ref_std(w, ddof=0):
    m = math.fsum(w) / len(w)
    return math.sqrt(math.fsum((v - m) ** 2 for v in w) / (len(w) - ddof))


def ref_ema(x, n, first=0):
    """TA-Lib's EMA seeded with the mean of x[first:first + n]."""
    out = [math.nan] * len(x)
    a = 2 / (n + 1)
    y = math.fsum(x[first:first + n]) / n
    out[first + n - 1] = y
    for i in range(first + n, len(x)):
        y = y + a * (x[i] - y)
        out[i] = y
    return out


def ref_rsi(x, n):
    out = [math.nan] * len(x)
    d = [x[i] - x[i - 1] for i in range(1, len(x))]
    gain = math.fsum(max(v, 0) for v in d[:n]) / n
    loss = math.fsum(max(-v, 0) for v in d[:n]) / n

    def value():
        return 100 * gain / (gain + loss) if gain + loss else 0.0
    out[n] = value()
    for i in range(n + 1, len(x)):
        v = d[i - 1]
        gain = (gain * (n - 1) + max(v, 0)) / n
        loss = (loss * (n - 1) + max(-v, 0)) / n
        out[i] = value()
    return out


def true_range(h, l, c):
    return [math.nan] + [max(h[i] - l[i], abs(h[i] - c[i - 1]), abs(l[i] - c[i - 1]))
                         for i in range(1, len(c))]


def ref_atr(h, l, c, n):
    tr = true_range(h, l, c)
    out = [math.nan] * len(c)
    y = math.fsum(tr[1:n + 1]) / n
    out[n] = y
    for i in range(n + 1, len(c)):
        y = (y * (n - 1) + tr[i]) / n
        out[i] = y
    return out


def ref_dmi(h, l, c, n):
    """Wilder's +DI, -DI and ADX as TA-Lib seeds them: sums of the first n - 1 moves,
    then each sum loses 1/n of itself and gains the new move."""
    tr = true_range(h, l, c)
    up = [math.nan] + [h[i] - h[i - 1] for i in range(1, len(c))]
    down = [math.nan] + [l[i - 1] - l[i] for i in range(1, len(c))]
    pdm = [math.nan] + [u if u > v and u > 0 else 0.0 for u, v in zip(up[1:], down[1:])]
    mdm = [math.nan] + [v if v > u and v > 0 else 0.0 for u, v in zip(up[1:], down[1:])]
    sp, sm, st = (math.fsum(s[1:n]) for s in (pdm, mdm, tr))
    plus, minus, dx = ([math.nan] * len(c) for _ in range(3))
    for i in range(n, len(c)):
        sp, sm, st = sp - sp / n + pdm[i], sm - sm / n + mdm[i], st - st / n + tr[i]
        plus[i], minus[i] = (100 * sp / st, 100 * sm / st) if st else (0.0, 0.0)
        total = plus[i] + minus[i]
        dx[i] = 100 * abs(plus[i] - minus[i]) / total if total else 0.0
    adx = [math.nan] * len(c)
    y = math.fsum(dx[n:2 * n]) / n
    adx[2 * n - 1] = y
    for i in range(2 * n, len(c)):
        y = (y * (n - 1) + dx[i]) / n
        adx[i] = y
    return plus, minus, adx


def cols(o):
    return o.high.tolist(), o.low.tolist(), o.close.tolist(), o.volume.tolist()


@pytest.mark.parametrize("n", [2, 9, 20])
def test_window_means_sums_and_deviations(candles, n):
    x = candles.close.tolist()
    roll = windows(x, n)
    assert_agrees(ind.sma(candles.close, n), roll(lambda w: math.fsum(w) / n))
    assert_agrees(ind.rolling_sum(candles.volume, n),
                  windows(candles.volume.tolist(), n)(math.fsum))
    total = n * (n + 1) / 2
    assert_agrees(ind.wma(candles.close, n),
                  roll(lambda w: math.fsum((k + 1) * v for k, v in enumerate(w)) / total))
    assert_agrees(ind.stddev(candles.close, n), roll(ref_std))
    assert_agrees(ind.stddev(candles.close, n, ddof=1), roll(lambda w: ref_std(w, 1)))
    bands = ind.bbands(candles.close, n, 2.5)
    assert_agrees(bands.middle, roll(lambda w: math.fsum(w) / n))
    assert_agrees(bands.upper, roll(lambda w: math.fsum(w) / n + 2.5 * ref_std(w)))
    assert_agrees(bands.lower, roll(lambda w: math.fsum(w) / n - 2.5 * ref_std(w)))


@pytest.mark.parametrize("n", [1, 5, 20, 55])
def test_highs_lows_and_channels(candles, n):
    h, l, c, v = cols(candles)
    assert_agrees(ind.rolling_max(candles.close, n), windows(c, n)(max))
    assert_agrees(ind.rolling_min(candles.close, n), windows(c, n)(min))
    ch = ind.donchian(candles, n)
    hi, lo = windows(h, n)(max), windows(l, n)(min)
    assert_agrees(ch.upper, hi)
    assert_agrees(ch.lower, lo)
    assert_agrees(ch.middle, [(a + b) / 2 for a, b in zip(hi, lo)])


def test_extremes_of_windows_holding_nan():
    """A NaN makes the highest and lowest of each window holding it NaN, and no other."""
    x = np.arange(20.0)
    x[[3, 11]] = np.nan
    for n in (1, 3, 4, 7):
        want = [math.nan if i < n - 1 or any(math.isnan(v) for v in x[i - n + 1:i + 1])
                else x[i] for i in range(20)]
        assert_agrees(ind.rolling_max(x, n), want)


@pytest.mark.parametrize("n, sk, sd", [(14, 3, 3), (5, 1, 4)])
def test_stochastic(candles, n, sk, sd):
    h, l, c, _ = cols(candles)
    hi, lo = windows(h, n)(max), windows(l, n)(min)
    fast = [math.nan if math.isnan(a) else (0.0 if a == b else (x - b) / (a - b) * 100)
            for a, b, x in zip(hi, lo, c)]
    k = [math.nan] * (n + sk - 2) + [math.fsum(fast[i - sk + 1:i + 1]) / sk
                                     for i in range(n + sk - 2, len(c))]
    d = [math.nan] * (n + sk + sd - 3) + [math.fsum(k[i - sd + 1:i + 1]) / sd
                                          for i in range(n + sk + sd - 3, len(c))]
    got = ind.stoch(candles, n, sk, sd)
    assert_agrees(got.k, k)
    assert_agrees(got.d, d)


@pytest.mark.parametrize("n", [1, 12, 60])
def test_vwap_and_windowed_obv(candles, n):
    h, l, c, v = cols(candles)
    tp = [(a + b + x) / 3 for a, b, x in zip(h, l, c)]
    want = []
    for i in range(len(c)):
        if i < n - 1 or not math.fsum(v[i - n + 1:i + 1]):
            want.append(math.nan)
        else:
            want.append(math.fsum(p * q for p, q in zip(tp[i - n + 1:i + 1], v[i - n + 1:i + 1]))
                        / math.fsum(v[i - n + 1:i + 1]))
    assert_agrees(ind.vwap(candles, n), want)
    signed = [math.nan] + [math.copysign(v[i], c[i] - c[i - 1]) if c[i] != c[i - 1] else 0.0
                           for i in range(1, len(c))]
    assert_agrees(ind.obv(candles, n), windows(signed, n)(math.fsum))


def test_running_obv(candles):
    _, _, c, v = cols(candles)
    total, want = v[0], [v[0]]
    for i in range(1, len(c)):
        total += v[i] if c[i] > c[i - 1] else -v[i] if c[i] < c[i - 1] else 0.0
        want.append(total)
    assert_agrees(ind.obv(candles), want)


def test_crossings_of_two_series_and_of_a_level():
    fast = [1.0, 3.0, 3.0, 1.0, 2.0, 2.5, math.nan, 3.0]
    slow = [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    want = [0, 1, 0, -1, 0, 1, 0, 1]  # 2 == 2 is no side; NaN counts as none
    assert ind.crossings(np.array(fast), np.array(slow)).tolist() == want
    assert ind.crossings(np.array(fast), 2.0).tolist() == want


@pytest.mark.parametrize("n", [2, 10, 30])
def test_ema(candles, n):
    assert_agrees(ind.ema(candles.close, n), ref_ema(candles.close.tolist(), n))


@pytest.mark.parametrize("n", [2, 14, 30])
def test_rsi(candles, n):
    assert_agrees(ind.rsi(candles.close, n), ref_rsi(candles.close.tolist(), n))


@pytest.mark.parametrize("fast, slow, signal", [(12, 26, 9), (3, 10, 1), (5, 6, 4)])
def test_macd(candles, fast, slow, signal):
    """TA-Lib starts the fast EMA later, so that both give their first value together."""
    x = candles.close.tolist()
    line = [a - b for a, b in zip(ref_ema(x, fast, slow - fast), ref_ema(x, slow))]
    sig = ref_ema(line, signal, slow - 1)
    start = slow + signal - 2
    got = ind.macd(candles.close, fast, slow, signal)
    nan = [math.nan] * start
    assert_agrees(got.macd, nan + line[start:])
    assert_agrees(got.signal, nan + sig[start:])
    assert_agrees(got.hist, nan + [a - b for a, b in zip(line[start:], sig[start:])])


@pytest.mark.parametrize("n", [1, 14, 30])
def test_atr(candles, n):
    h, l, c, _ = cols(candles)
    assert_agrees(ind.atr(candles, n), ref_atr(h, l, c, n))


@pytest.mark.parametrize("n", [2, 14, 30])
def test_adx_and_directional_indexes(candles, n):
    plus, minus, adx = ref_dmi(*cols(candles)[:3], n)
    got = ind.dmi(candles, n)
    assert_agrees(got.plus, plus)
    assert_agrees(got.minus, minus)
    assert_agrees(got.adx, adx)
    assert_agrees(ind.adx(candles, n), adx)


@pytest.mark.parametrize("n", [3, 20])
def test_window_indicators_have_talibs_definitions(candles, n):
    """The window indicators written here give TA-Lib's values (which differ in the last
    bits: TA-Lib's running totals carry rounding; its STOCH %K waits for %D)."""
    h, l, c, v = candles.high, candles.low, candles.close, candles.volume
    assert_agrees(ind.sma(c, n), talib.SMA(c, n))
    assert_agrees(ind.wma(c, n), talib.WMA(c, n))
    assert_agrees(ind.stddev(c, n), talib.STDDEV(c, n, 1.0))
    for mine, theirs in zip(ind.bbands(c, n, 2.0), talib.BBANDS(c, n, 2.0, 2.0)):
        assert_agrees(mine, theirs)
    assert_agrees(ind.rolling_max(c, n), talib.MAX(c, n))
    assert_agrees(ind.rolling_min(c, n), talib.MIN(c, n))
    assert_agrees(ind.rolling_sum(v, n), talib.SUM(v, n))
    assert_agrees(ind.obv(candles), talib.OBV(c, v))
    k, d = talib.STOCH(h, l, c, n, 3, 0, 3, 0)
    mine = ind.stoch(candles, n, 3, 3)
    assert_agrees(mine.d, d)
    assert_agrees(np.where(np.isnan(k), np.nan, mine.k), k)
