"""Every paper and live flag, config key and Python option is type- and range-checked where
it is read: a bad one is a one-line `planarpy: error:` naming it, its value and what is
allowed, with no traceback, and nothing starts."""

from __future__ import annotations

import pytest

from planarpy import ConfigError
from planarpy.cli.main import main
from planarpy.config import load_config
from planarpy.exchanges import exchange_config
from planarpy.modes.runtime.stopping import stop_settings

STRATEGY = ("from planarpy import Strategy\n"
            "class Quiet(Strategy):\n"
            "    exchange = 'binance'\n    quote = 'ETH'\n"
            "    timeframe = '1m'\n    universe = ('XRP/ETH',)\n")

SECONDS = "a number > 0 (seconds)"

# (command, flag, value, what the message must say is allowed)
BAD_FLAGS = [
    ("live", "--status-every", "-1", SECONDS),
    ("live", "--status-every", "0", SECONDS),
    ("live", "--status-every", "nan", SECONDS),
    ("live", "--tick-interval", "0", SECONDS),
    ("live", "--tick-interval", "-1", SECONDS),
    ("live", "--tick-interval", "inf", SECONDS),
    ("live", "--duration", "0", SECONDS),
    ("live", "--duration", "NaN", SECONDS),
    ("live", "--duration", "soon", SECONDS),
    ("live", "--waitfor", "-1", "a number from 0 to 86400 (seconds)"),
    ("live", "--waitfor", "nan", "a number from 0 to 86400 (seconds)"),
    ("live", "--waitfor", "1e10", "a number from 0 to 86400 (seconds)"),  # a thread wait's overflow
    ("live", "--stop-timeout", "0", SECONDS),
    ("live", "--stop-timeout", "inf", SECONDS),
    ("live", "--exchange-url", "127.0.0.1:8765", "an http(s) URL like http://host:port"),
    ("live", "--exchange", "", "a non-empty string"),
    ("live", "--on-stop", "maybe", "choose from 'keep', 'cancel', 'close'"),
    ("paper", "--cash", "0", "a number > 0"),
    ("paper", "--cash", "-5", "a number > 0"),
    ("paper", "--cash", "nan", "a number > 0"),
    ("paper", "--tick-interval", "0", SECONDS),
    ("paper", "--duration", "-3", SECONDS),
    ("paper", "--status-every", "inf", SECONDS),
    ("paper", "--stop-timeout", "-1", SECONDS),
    ("paper", "--trace-dir", "", "a non-empty string"),
]


def run_cli(capsys, *argv):
    """Exit code and stderr lines of `planarpy argv...` run in this process."""
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("command,flag,value,allowed", BAD_FLAGS)
def test_a_bad_flag_is_one_line_naming_it(capsys, tmp_path, command, flag, value, allowed):
    """The flag, its value and what is allowed, on one line; exit 2; nothing starts."""
    strategy = tmp_path / "quiet.py"
    strategy.write_text(STRATEGY)
    traces = [] if flag == "--trace-dir" else ["--trace-dir", str(tmp_path / "traces")]
    code, lines = run_cli(capsys, command, str(strategy), flag, value, *traces)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"planarpy: error: argument {flag}"), lines
    assert repr(value) in lines[0] and allowed in lines[0], lines
    assert not (tmp_path / "traces").exists()


def test_old_stop_flags_are_aliases_and_exclusive(capsys):
    """--cancel-on-stop and --close-on-stop mean --on-stop cancel/close; two of them conflict."""
    from planarpy.cli.main import build_parser
    parse = build_parser().parse_args
    assert parse(["live", "x", "--cancel-on-stop"]).on_stop == "cancel"
    assert parse(["live", "x", "--close-on-stop"]).on_stop == "close"
    assert parse(["paper", "x", "--on-stop", "close"]).on_stop == "close"
    assert parse(["live", "x"]).on_stop is None  # planar.toml's, else keep
    code, lines = run_cli(capsys, "live", "x", "--on-stop", "keep", "--cancel-on-stop")
    assert code == 2 and lines == [
        "planarpy: error: argument --cancel-on-stop: not allowed with argument --on-stop "
        "(see planarpy live --help)"]


# (planar.toml text, the message's start, the value as shown, what is allowed)
BAD_CONFIG = [
    ('[exchanges.binance]\nsandbox = "false"\n', "[exchanges.binance] sandbox", "'false'",
     "true or false"),
    ("[exchanges.binance]\nrate_limit = 1\n", "[exchanges.binance] rate_limit", "1",
     "true or false"),
    ("[exchanges.binance]\nrate_limit_ms = nan\n", "[exchanges.binance] rate_limit_ms", "nan",
     "a number > 0"),
    ("[exchanges.binance]\nrate_limit_ms = -5\n", "[exchanges.binance] rate_limit_ms", "-5",
     "a number > 0"),
    ('[exchanges.binance]\ntimeout = "abc"\n', "[exchanges.binance] timeout", "'abc'",
     "a whole number >= 1 (milliseconds)"),
    ("[exchanges.binance]\ntimeout = 0\n", "[exchanges.binance] timeout", "0",
     "a whole number >= 1"),
    ("[exchanges.binance]\ntimeout = 1.5\n", "[exchanges.binance] timeout", "1.5",
     "a whole number >= 1"),
    ('[exchanges.binance]\nurl = "localhost:80"\n', "[exchanges.binance] url", "'localhost:80'",
     "an http(s) URL"),
    ("[exchanges.binance]\noptions = 3\n", "[exchanges.binance] options", "3", "a table"),
    ('[exchanges.binance]\nkeys = ""\n', "[exchanges.binance] keys", "''", "a non-empty string"),
    ('[exchanges.binance]\nid = 7\n', "[exchanges.binance] id", "7", "a non-empty string"),
    ('[exchanges.binance]\non_stop = "yes"\n', "[exchanges.binance] on_stop", "'yes'",
     "one of keep, cancel, close"),
    ("[exchanges.binance]\nsandbx = true\n", "[exchanges.binance] has unknown key(s) sandbx",
     "", "known: id, keys, on_stop"),
    ("exchanges = 3\n", "", "", "[exchanges] must be a table"),
    ('[live]\non_stop = "nope"\n', "[live] on_stop", "'nope'", "one of keep, cancel, close"),
    ("[live]\nstop_timeout = 0\n", "[live] stop_timeout", "0", "a number > 0 (seconds)"),
    ("[live]\nstop_timeout = inf\n", "[live] stop_timeout", "inf", "a number > 0 (seconds)"),
    ('[live]\nstop_timeout = "10"\n', "[live] stop_timeout", "'10'", "a number > 0 (seconds)"),
    ("[live]\nstatus = 1\n", "[live] has unknown key(s) status", "", "on_stop, "),
    ("[live.Quiet]\ncheckpoint_every = -1\n", "[live.Quiet] checkpoint_every", "-1",
     "a number > 0 (seconds)"),
    ("[paper]\ncheckpoint_every = nan\n", "[paper] checkpoint_every", "nan", "a number > 0"),
    ("[alerts]\ntimeout = 0\n", "[alerts] timeout", "0", "a number > 0"),
    ('[alerts]\nwebhooks = ["ftp://x"]\n', "[alerts] webhooks", "['ftp://x']",
     "a list of http(s) URLs"),
    ('[shadow]\nhalt = "yes"\n', "[shadow] halt", "'yes'", "true or false"),
    ("[shadow]\nmin_match_rate = 1.5\n", "[shadow] min_match_rate", "1.5", "a number"),
    ("[live.Quiet]\nstop_timeout = -1\n", "[live.Quiet] stop_timeout", "-1", "a number > 0"),
    ("[live.Other]\non_stop = true\n", "[live.Other] on_stop", "True", "one of keep"),
    ("live = 3\n", "", "", "[live] must be a table"),
    ("[paper]\nstop_timeout = nan\n", "[paper] stop_timeout", "nan", "a number > 0 (seconds)"),
    ('[paper]\non_stop = "sell"\n', "[paper] on_stop", "'sell'", "one of keep, cancel, close"),
    ("[strategies]\nfoo = 3\n", "", "3", "[strategies] foo must be a path or module name"),
]


LIVE_ONLY = [  # the periodic reconciliation is live's
    ('[live]\nreconcile_policy = "fix"\n', "[live] reconcile_policy", "'fix'",
     "one of warn, adjust, halt"),
    ("[live]\nreconcile_every = 0\n", "[live] reconcile_every", "0", "a number > 0 (seconds)"),
    ("[paper]\nreconcile_every = 5\n", "[paper] has unknown key(s) reconcile_every", "",
     "checkpoint_every, on_stop, stop_timeout"),
]


@pytest.mark.parametrize("toml,name,value,allowed", LIVE_ONLY)
def test_a_bad_live_only_key_is_one_line_naming_it(capsys, tmp_path, monkeypatch, toml, name,
                                                   value, allowed):
    command = "paper" if toml.startswith("[paper") else "live"
    test_a_bad_config_key_is_one_line_naming_it(capsys, tmp_path, monkeypatch, command, toml,
                                                name, value, allowed)


@pytest.mark.parametrize("toml,name,value,allowed", BAD_CONFIG)
@pytest.mark.parametrize("command", ["live", "paper"])
def test_a_bad_config_key_is_one_line_naming_it(capsys, tmp_path, monkeypatch, command, toml,
                                                name, value, allowed):
    """Each key as live and paper read it: one line naming it, its value and what is
    allowed; exit 2; no trace, so nothing ran."""
    if command == "paper" and toml.startswith("[live") or \
            command == "live" and toml.startswith("[paper"):
        toml = toml.replace("[live", "[paper") if command == "paper" else \
            toml.replace("[paper", "[live")
        name = name.replace("[live", "[paper") if command == "paper" else \
            name.replace("[paper", "[live")
    strategy = tmp_path / "quiet.py"
    strategy.write_text(STRATEGY)
    config = tmp_path / "planar.toml"
    config.write_text(toml)
    monkeypatch.setenv("PLANARPY_BINANCE_API_KEY", "k")
    monkeypatch.setenv("PLANARPY_BINANCE_SECRET", "s")
    code, lines = run_cli(capsys, command, str(strategy), "--config", str(config),
                          "--exchange-url", "http://127.0.0.1:9", "--trace-dir",
                          str(tmp_path / "traces"))
    assert code == 2 and len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("planarpy: error: "), line
    assert name in line and allowed in line and (not value or f"not {value}" in line), line
    assert not (tmp_path / "traces").exists()


# Python options of start_live / start_paper, checked when the run is made
BAD_OPTIONS = [
    ({"tick_interval": 0}, "tick_interval must be a number > 0 (seconds), not 0"),
    ({"tick_interval": float("nan")}, "tick_interval must be a number > 0 (seconds), not nan"),
    ({"waitfor": -1}, "waitfor must be a number from 0 to 86400 (seconds), not -1"),
    # each action's wait overflowed Python's thread wait (an OverflowError after the order)
    ({"waitfor": 1e10}, "waitfor must be a number from 0 to 86400 (seconds), not 10000000000.0"),
    ({"stall_after": float("inf")}, "stall_after must be a number > 0 (seconds), not inf"),
    ({"candles": 0}, "candles must be a whole number >= 1, not 0"),
    ({"candles": 2.5}, "candles must be a whole number >= 1, not 2.5"),
    ({"on_stop": "later"}, "on_stop must be one of keep, cancel, close, not 'later'"),
    ({"stop_timeout": -2}, "stop_timeout must be a number > 0 (seconds), not -2"),
    ({"on_stop": "keep", "cancel_on_stop": True}, "on_stop='keep' contradicts cancel_on_stop"),
]


@pytest.mark.parametrize("options,message", BAD_OPTIONS + [
    ({"idle_stop": 0}, "idle_stop must be a number > 0 (seconds), not 0"),
    ({"history": True}, "history must be a whole number >= 1 (orders and trades), not True")])
def test_live_python_options_are_checked(options, message):
    from planarpy.modes.live import live_run
    from livekit import Quiet
    with pytest.raises(ConfigError) as e:
        live_run(Quiet, settings={}, exchange_url="http://127.0.0.1:9", **options)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize("options,message", BAD_OPTIONS + [
    ({"cash": float("nan")}, "cash must be a number > 0, not nan"),
    ({"depth": 0}, "depth must be a whole number >= 1 (book levels), not 0"),
    ({"market_every": -1}, "market_every must be a number > 0 (seconds), not -1")])
def test_paper_python_options_are_checked(options, message):
    from planarpy.modes.paper import paper_run
    from livekit import Quiet
    with pytest.raises(ConfigError) as e:
        paper_run(Quiet, settings={}, exchange_url="http://127.0.0.1:9", **options)
    assert str(e.value).startswith(message)


def test_on_stop_comes_from_the_most_specific_place():
    """Argument > [live.STRATEGY] > [exchanges.NAME] > [live] > keep; the same for
    stop_timeout (argument > [live.STRATEGY] > [live] > 30 s)."""
    def settle(cfg, **kw):
        return stop_settings(cfg, "live", exchange_config("binance", cfg), "Quiet", **kw)
    assert settle({}) == ("keep", 30.0)
    cfg = {"live": {"on_stop": "cancel", "stop_timeout": 5}}
    assert settle(cfg) == ("cancel", 5.0)
    cfg["exchanges"] = {"binance": {"on_stop": "close"}}
    assert settle(cfg) == ("close", 5.0)
    cfg["live"]["Quiet"] = {"on_stop": "keep", "stop_timeout": 7.5}
    cfg["live"]["Other"] = {"on_stop": "cancel"}
    assert settle(cfg) == ("keep", 7.5)
    assert settle(cfg, on_stop="cancel", stop_timeout=1) == ("cancel", 1.0)
    assert settle(cfg, close_on_stop=True) == ("close", 7.5)
    assert stop_settings(cfg, "paper", exchange_config("binance", cfg), "Quiet") == ("close", 30.0)


def test_good_values_pass_and_keep_their_types(tmp_path):
    """The values the checks accept come through unchanged (ints as floats where seconds)."""
    cfg = {"exchanges": {"binance": {"sandbox": False, "rate_limit": True, "rate_limit_ms": 50,
                                     "timeout": 5000, "options": {"a": 1}, "keys": "main",
                                     "url": "http://127.0.0.1:1"}}}
    x = exchange_config("binance", cfg)
    assert (x.sandbox, x.rate_limit, x.rate_limit_ms, x.timeout_ms, x.keys, x.url) == \
        (False, True, 50.0, 5000, "main", "http://127.0.0.1:1")
    p = tmp_path / "planar.toml"
    p.write_text('[live]\non_stop = "cancel"\n[paper.Quiet]\nstop_timeout = 2\n')
    assert load_config(p)["live"] == {"on_stop": "cancel"}
