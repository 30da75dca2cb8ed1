"""Strategy parameters: declaring them, reading them, setting them from Python and the
command line, and finding them again in the summary, the trace header and a replay."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from planarpy import Param, ParamError, Strategy, backtest, find_strategy
from planarpy.cli.main import main
from planarpy.trace import EventTrace, replay_from_trace
from planarpy.trace.replay import run_header


def make(**params):
    body = {"exchange": "binance", "quote": "BTC", "timeframe": "5m", "universe": ("ETH/BTC",),
            **params}
    return type("Tuned", (Strategy,), body)


def test_param_reads_as_spec_on_the_class_and_value_on_the_strategy(repo_root, monkeypatch):
    """The class holds the Param; a strategy holds its value, the default or the one given."""
    monkeypatch.chdir(repo_root)
    cls = find_strategy("sma_cross")
    assert isinstance(cls.fast, Param) and cls.fast.kind == "int" and cls.invest.kind == "float"
    r = backtest(cls, params={"fast": 12, "invest": 0.5})
    s = r.strategy
    assert (s.fast, s.slow, s.invest) == (12, 30, 0.5)
    assert s.params == {"fast": 12, "slow": 30, "invest": 0.5}
    assert r.summary()["params"] == {"fast": 12, "slow": 30, "invest": 0.5}
    assert "params          fast=12 slow=30 invest=0.5" in r.format_summary()
    assert backtest(cls).strategy.fast == 10


def test_params_change_the_run(repo_root, monkeypatch):
    """Different parameters give a different backtest; the defaults give the default one."""
    monkeypatch.chdir(repo_root)
    cls = find_strategy("sma_cross")
    base = backtest(cls).final_equity
    assert backtest(cls, params={"fast": 10, "slow": 30}).final_equity == base
    assert backtest(cls, params={"fast": 5, "slow": 60}).final_equity != base


@pytest.mark.parametrize("given, message", [
    ({"fsat": 3}, "unknown parameter 'fsat' for SmaCross; its parameters: fast (int from 2 to 50)"),
    ({"fast": 2.5}, "parameter fast=2.5: the value must be an int; allowed: int from 2 to 50"),
    ({"fast": "7"}, "parameter fast='7': the value must be an int"),
    ({"fast": True}, "parameter fast=True: the value must be an int"),
    ({"fast": 51}, "parameter fast=51: out of range; allowed: int from 2 to 50"),
    ({"invest": 1.5}, "parameter invest=1.5: out of range; allowed: float from 0.05 to 1.0"),
    ({"invest": float("nan")}, "parameter invest=nan: out of range"),
])
def test_bad_values_from_python_name_the_parameter(given, message, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    with pytest.raises(ParamError) as e:
        backtest(find_strategy("sma_cross"), params=given)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("spec, message", [
    (Param(10, low=50, high=5), "parameter Tuned.x: empty range, low=50 is above high=5"),
    (Param(10), "parameter Tuned.x: low is missing; an int parameter needs low= and high="),
    (Param(10, low=1.5, high=20), "parameter Tuned.x: low=1.5 is not an int"),
    (Param(0.5, low=0.0, high="1"), "parameter Tuned.x: high='1' is not a float"),
    (Param(10, low=1, high=5), "parameter Tuned.x: default 10 is out of range; allowed: int "
                               "from 1 to 5"),
    (Param(10, low=1, high=20, step=0), "parameter Tuned.x: step=0 must be a positive int"),
    (Param("a", choices=()), "parameter Tuned.x: choices are empty"),
    (Param("c", choices=("a", "b")), "parameter Tuned.x: default 'c' is not among its choices (a, b)"),
    (Param("text"), "default 'text' is not an int, a float or a bool"),
    (Param(0.1, low=0.0, high=1.0, log=True), "a log scale needs low > 0 and no step"),
])
def test_bad_specs_fail_when_the_class_is_defined(spec, message):
    """An empty range, a wrong type or a default outside the range: a clear error at once."""
    with pytest.raises(ParamError) as e:
        make(x=spec)
    assert message in str(e.value)


def test_a_param_may_not_shadow_the_base_class():
    with pytest.raises(ParamError, match="the name 'timeframe' is taken by the Strategy base"):
        make(timeframe=Param(5, low=1, high=9))


def test_choices_and_bools():
    cls = make(side=Param("long", choices=("long", "short")), flag=Param(False))
    assert cls.flag.choices == (False, True)
    from planarpy.params import parse_items
    assert parse_items(cls, ["side=short", "flag=true"]) == {"side": "short", "flag": True}
    with pytest.raises(ParamError, match=r"parameter side='up': not allowed; one of long, short"):
        parse_items(cls, ["side=up"])


def test_a_subclass_may_replace_a_param_with_a_plain_value():
    base = make(n=Param(3, low=1, high=9), m=Param(1.0, low=0.0, high=2.0))
    sub = type("Fixed", (base,), {"n": 4})
    from planarpy.params import specs
    assert list(specs(base)) == ["n", "m"] and list(specs(sub)) == ["m"]


def test_sim_cli_sets_params_and_reports_them(repo_root, monkeypatch, capsys):
    monkeypatch.chdir(repo_root)
    assert main(["sim", "sma_cross", "-p", "fast=12", "--param", "invest=0.5", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["params"] == {"fast": 12, "slow": 30, "invest": 0.5}


@pytest.mark.parametrize("item, message", [
    ("fsat=3", "unknown parameter 'fsat' for SmaCross; its parameters: fast (int from 2 to 50), "
               "slow (int from 5 to 200), invest (float from 0.05 to 1.0)"),
    ("fast=abc", "parameter fast='abc': not an int; allowed: int from 2 to 50"),
    ("fast=3.5", "parameter fast='3.5': not an int; allowed: int from 2 to 50"),
    ("fast=300", "parameter fast=300: out of range; allowed: int from 2 to 50"),
    ("invest=x", "parameter invest='x': not a float; allowed: float from 0.05 to 1.0"),
    ("fast", "-p takes NAME=VALUE, got 'fast'"),
])
@pytest.mark.parametrize("mode", ["sim", "paper", "live"])
def test_cli_bad_param_is_one_clear_line(mode, item, message, repo_root, monkeypatch, capsys):
    """Every mode checks -p before it starts anything: one line, no traceback."""
    monkeypatch.chdir(repo_root)
    extra = ["--no-trace", "--exchange-url", "http://127.0.0.1:9"] if mode != "sim" else []
    assert main([mode, "sma_cross", "-p", item, *extra]) == 2
    err = capsys.readouterr().err
    assert err == f"planarpy: error: {message}\n"


def test_recorded_sim_header_holds_params_and_replay_reads_them(repo_root, monkeypatch, tmp_path):
    """`sim --record` writes the params into the run header; replay and run_header give them."""
    monkeypatch.chdir(repo_root)
    cls = find_strategy("sma_cross")
    with EventTrace.open(tmp_path / "t", strategy="SmaCross", exchange="binance") as trace:
        r = backtest(cls, params={"slow": 40}, recorder=trace)
    header = run_header(tmp_path / "t")
    assert header["params"] == {"fast": 10, "slow": 40, "invest": 0.99}
    report = replay_from_trace(r.strategy, tmp_path / "t")
    assert report.ok and report.params == header["params"]


def test_trace_replay_cli_rebuilds_with_the_recorded_params(repo_root, monkeypatch, tmp_path):
    monkeypatch.chdir(repo_root)
    trace = tmp_path / "t"
    assert main(["sim", "sma_cross", "-p", "slow=40", "--record", str(trace)]) == 0
    out = subprocess.run([sys.executable, "-m", "planarpy.cli.main", "trace", "replay", str(trace),
                          "--strategy", "sma_cross"], capture_output=True, text=True,
                         cwd=repo_root, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "params     fast=10 slow=40 invest=0.99" in out.stdout


# ---- odd specs and values, found by an adversarial review ---------------------------------
@pytest.mark.parametrize("spec, message", [
    (Param(1, choices=(1, True, 2)), "choices 1 and True are equal"),
    (Param(1, choices=(1, 1.0)), "choices 1 and 1.0 are equal"),
    (Param("a", choices=("a", "b", "a")), "choices 'a' and 'a' are equal"),
    (Param((1, 2), choices=((1, 2), (3, 4))), "choice (1, 2) is a tuple; a choice is None, a "
                                              "bool, an int, a float or a str"),
    (Param(0.5, choices=(0.5, float("nan"))), "choice nan is not a finite number"),
    (Param("long", choices="long"), "choices='long' is a string; give a tuple of values"),
    (Param(True, low=0, high=1), "low, high, step and log are for int and float parameters"),
    (Param("a", choices=("a", "b"), step=1), "low, high, step and log are for int and float"),
    (Param(1.0, low=0.5, high=2.0, log="yes"), "log='yes' is not True or False"),
    (Param(1, low=0, high=10**30), "high=10**30 is beyond 2**53"),
])
def test_odd_specs_fail_when_the_class_is_defined(spec, message):
    with pytest.raises(ParamError) as e:
        make(x=spec)
    assert message.replace("10**30", str(10**30)) in str(e.value), str(e.value)
    assert str(e.value).startswith("parameter Tuned.x: ")


def test_numpy_defaults_and_bounds_become_plain_numbers():
    """A default of numpy type would not go into JSON (sim --json, the trace, a study)."""
    import numpy as np
    cls = make(n=Param(np.int64(10), low=np.int64(2), high=50),
               f=Param(np.float32(0.5), low=0, high=1))
    s = cls({"ETH/BTC": _market()})
    assert json.dumps(s.params) == '{"n": 10, "f": 0.5}'
    assert type(cls.f.low) is float and type(cls.n.low) is int


def _market():
    from planarpy.data.sources import markets_for
    return markets_for("binance", {})["ETH/BTC"]


def test_a_choice_value_is_the_declared_choice():
    """From Python or the command line, a value equal to a choice gives that choice."""
    import numpy as np
    from planarpy.params import parse_items, resolve
    cls = make(m=Param(1, choices=(1, 2.5, "x", None)))
    assert resolve(cls, {"m": np.int64(1)})["m"] == 1 and \
        type(resolve(cls, {"m": np.int64(1)})["m"]) is int
    assert type(resolve(cls, {"m": 1.0})["m"]) is int
    assert parse_items(cls, ["m=2.50"]) == {"m": 2.5}
    assert parse_items(cls, ["m=1.0"]) == {"m": 1}
    assert parse_items(cls, ["m=None"]) == {"m": None}
    with pytest.raises(ParamError, match="parameter m=True: not allowed"):
        resolve(cls, {"m": True})
