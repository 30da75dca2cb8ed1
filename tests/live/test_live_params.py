"""Strategy parameters in live mode: `start_live(params=...)` sets them, checked before
anything starts, and the trace's run header records them."""

import pytest

from planarpy import Param, ParamError
from planarpy.trace import EventTrace
from planarpy.trace.replay import run_header

from livekit import Quiet, live


class Sized(Quiet):
    size = Param(2.0, low=0.5, high=10.0)


def test_live_run_takes_params_and_records_them(local_exchange, tmp_path):
    trace = EventTrace.open(tmp_path / "t", strategy="Sized", exchange="binance")
    with live(local_exchange, Sized, params={"size": 4.5}, trace=trace) as run:
        assert run.session.s.size == 4.5 and run.session.s.params == {"size": 4.5}
    assert run_header(tmp_path / "t")["params"] == {"size": 4.5}


def test_live_bad_param_fails_before_connecting():
    """No exchange at this address: the parameter error comes first, naming the value."""
    with pytest.raises(ParamError, match=r"parameter size=20.0: out of range; allowed: float "
                                         r"from 0.5 to 10.0"):
        from planarpy.exchanges import ApiKeys
        from planarpy.modes.live import start_live
        start_live(Sized, exchange_url="http://127.0.0.1:9", keys=ApiKeys("k", "s"),
                   settings={}, params={"size": 20.0})
