import math

import pytest

from planarpy import ConfigError, Market
from planarpy.data.sample import sample_markets


def test_from_ccxt_reads_precision_limits_fees():
    """A ccxt market dict gives steps, limits, fees, contract size and leverage."""
    m = Market.from_ccxt(sample_markets("binanceusdm")["XRP/USDT:USDT"])
    assert (m.amount_step, m.price_step) == (0.1, 0.0001)
    assert (m.min_amount, m.min_cost) == (0.1, 5.0)
    assert (m.maker, m.taker) == (0.0002, 0.0004)
    assert m.contract_size == 1.0 and m.max_leverage == 75.0 and m.is_derivative
    assert Market.from_ccxt(m.to_ccxt()) == m


def test_decimal_places_precision_mode():
    """ccxt's DECIMAL_PLACES precision (digits) becomes a tick size."""
    d = dict(sample_markets("binance")["ETH/BTC"], precision={"amount": 3, "price": 6})
    m = Market.from_ccxt(d, precision_mode=2)
    assert m.amount_step == 0.001 and m.price_step == 1e-6


def test_bad_market_dict_is_a_config_error():
    """A market dict without precision fails with the symbol in the message."""
    with pytest.raises(ConfigError, match="'ABC/DEF' is not a valid ccxt market"):
        Market.from_ccxt({"symbol": "ABC/DEF", "base": "ABC", "quote": "DEF"})


@pytest.mark.parametrize("amount, price, message", [
    (0.00001, 0.1, "below the minimum 0.0001 of ETH/BTC"),
    (0.00012345, 0.1, "more decimals than ETH/BTC allows"),
    (0.0005, 0.1, "order cost 5e-05 BTC is below the minimum 0.0001 BTC"),
    (-1.0, 0.1, "amount must be a positive number"),
    (1.0, math.nan, "price must be a positive number"),
])
def test_check_order_explains(amount, price, message):
    """Orders that break the market's rules get a reason naming the rule."""
    m = Market.from_ccxt(sample_markets("binance")["ETH/BTC"])
    assert message in m.check_order(amount, price)


def test_check_limit_price_ticks():
    """A limit price off the tick grid is refused with the tick in the message."""
    m = Market.from_ccxt(sample_markets("binance")["ETH/BTC"])
    assert "tick 1e-08" in m.check_limit_price(0.123456789)
    assert m.check_limit_price(0.12345678) is None
