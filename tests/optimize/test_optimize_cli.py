"""`planarpy optimize` options: each bad value is one line naming the option, no traceback;
the outputs (--csv, --plot) go where asked or say why they cannot."""

from __future__ import annotations

import pytest

from planarpy.cli.main import main

GRID = ["--method", "grid", "-r", "fast=5:10:5", "-r", "slow=20:40:20", "-p", "invest=0.99"]


@pytest.mark.parametrize("extra, message", [
    (["--address", "127.0.0.1:6379"], "--address is the address of a Ray cluster; it needs "
                                      "--backend ray"),
    (["--csv", "{tmp}/no/such/dir/t.csv"], "--csv {tmp}/no/such/dir/t.csv: cannot write it "
                                          "(No such file or directory)"),
    (["--plot", "{tmp}/heat.png"], "--plot {tmp}/heat.png: the chart is an HTML page; give a "
                                  "file name ending in .html"),
    (["--study", ""], "--study must not be empty"),
    (["--train", "0.6"], "--train shapes the folds of --walk-forward; give --walk-forward "
                         "FOLDS (a single train/test split is --split TRAIN)"),
    (["--split", "0.7", "--anchored"], "--anchored shapes the folds of --walk-forward; give "
                                       "--walk-forward FOLDS (a single train/test split is "
                                       "--split TRAIN)"),
    (["--cash", "nan"], "--cash must be a positive number, got nan"),
    (["--cash", "-1"], "--cash must be a positive number, got -1.0"),
    (["--cash", "inf"], "--cash must be a positive number, got inf"),
    (["--data-dir", "{tmp}/nowhere"], "--data-dir {tmp}/nowhere: no such directory"),
])
def test_bad_option_is_one_line(extra, message, here, tmp_path, capsys):
    args = ["optimize", "sma_cross", *GRID, "--storage", str(tmp_path / "s.journal"),
            *[a.format(tmp=tmp_path) for a in extra]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"planarpy: error: {message.format(tmp=tmp_path)}\n"


def test_outputs_are_written_where_asked(here, tmp_path, capsys):
    pytest.importorskip("bokeh")
    csv, page = tmp_path / "t.csv", tmp_path / "heat.HTML"
    assert main(["optimize", "sma_cross", *GRID, "--storage", str(tmp_path / "s.journal"),
                 "--csv", str(csv), "--plot", str(page)]) == 0
    assert csv.read_text().startswith("trial,fast,slow,sharpe")
    assert "Bokeh" in page.read_text()
