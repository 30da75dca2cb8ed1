"""`planarpy optimize` options: each bad value is one line naming the option, no traceback;
the outputs (--csv, --plot) go where asked or say why they cannot."""

from __future__ import annotations

import pytest

from planarpy.cli.main import main

HELP = " (see planarpy optimize --help)"
GRID = ["--method", "grid", "-r", "fast=5:10:5", "-r", "slow=20:40:20", "-p", "invest=0.99"]


@pytest.mark.parametrize("extra, message", [
    (["--address", "127.0.0.1:6379"], "--address is the address of a Ray cluster; it needs "
                                      "--backend ray"),
    (["--csv", "{tmp}/no/such/dir/t.csv"], "argument --csv: must be a file ending in .csv in "
                                          "an existing directory, not "
                                          "'{tmp}/no/such/dir/t.csv'" + HELP),
    (["--plot", "{tmp}/heat.png"], "argument --plot: must be a file ending in .html or .htm in "
                                  "an existing directory, not '{tmp}/heat.png'" + HELP),
    (["--study", ""], "--study must not be empty"),
    (["--train", "0.6"], "--train shapes the folds of --walk-forward; give --walk-forward "
                         "FOLDS (a single train/test split is --split TRAIN)"),
    (["--split", "0.7", "--anchored"], "--anchored shapes the folds of --walk-forward; give "
                                       "--walk-forward FOLDS (a single train/test split is "
                                       "--split TRAIN)"),
    (["--cash", "nan"], "argument --cash: must be a number > 0 and < 1e+15, not 'nan'" + HELP),
    (["--cash", "-1"], "argument --cash: must be a number > 0 and < 1e+15, not '-1'" + HELP),
    (["--cash", "inf"], "argument --cash: must be a number > 0 and < 1e+15, not 'inf'" + HELP),
    (["--data-dir", "{tmp}/nowhere"], "argument --data-dir: must be an existing directory, "
                                      "not '{tmp}/nowhere'" + HELP),
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
