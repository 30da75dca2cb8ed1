"""The sim summary says how many entries were only partly filled, and `sim --trades`
prints the round trips."""

from __future__ import annotations

import json

from planarpy import call
from planarpy.cli.main import main
from planarpy.modes.sim import SimConfig
from simkit import flat, run


def test_an_entry_the_volume_cap_cut_is_counted():
    """An all-in buy that the candle's volume lets fill to 1% is named in the summary
    (it was not mentioned), with its share; exits are not entries."""
    def all_in(s):
        return call(s, "market_order", s.assets[0], 9.0, side="buy")

    def out(s):
        return call(s, "market_order", s.assets[0], s.assets[0].free_balance, side="sell")
    r = run({1: all_in, 3: out}, flat(6, volume=100.0),
            config=SimConfig(slippage=0.0, volume_cap=True))
    d = r.summary()
    assert d["entries"] == 1 and d["partial_entries"] == 1
    assert abs(d["least_entry_fill"] - 1.0 / 9.0) < 1e-9
    assert "entries         1 filled, 1 of them only partly (the least to 11.11%)" in \
        r.format_summary()


def test_entries_filled_in_full_say_so():
    """Whole fills: 'all in full'."""
    def buy(s):
        return call(s, "market_order", s.assets[0], 1.0, side="buy")
    r = run({1: buy, 2: buy}, flat(5))
    assert r.summary()["entries"] == 2 and r.summary()["partial_entries"] == 0
    assert "entries         2 filled, all in full" in r.format_summary()


def test_sim_trades_prints_the_round_trips(repo_root, monkeypatch, capsys):
    """`sim --trades` prints a header and one line per round trip after the summary;
    with --json they are in the JSON."""
    monkeypatch.chdir(repo_root)
    assert main(["sim", "sma_cross", "--json", "--trades"]) == 0
    d = json.loads(capsys.readouterr().out)
    trips = d["round_trips_list"]
    assert len(trips) == d["round_trips"] > 0
    assert main(["sim", "sma_cross", "--trades"]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\n", 1)[1].splitlines()
    assert table[0].split()[:4] == ["symbol", "side", "entry", "exit"]
    assert len(table) == len(trips) + 1
    assert table[1].startswith("ETH/BTC  long  ")
