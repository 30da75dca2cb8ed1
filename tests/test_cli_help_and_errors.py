"""The command line's first impressions: bare `planarpy` prints help, `--version`, every
subcommand's help shows an example (and its defaults); and what ends a command: a user
error is one line (exit 2), an error in a strategy's own code keeps its traceback down to
the strategy's line (exit 1)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

import planarpy
from planarpy.cli.main import build_parser, main


def planarpy_cli(*args: str, cwd: Path, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "planarpy.cli.main", *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=120)


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [path]
    return [leaf for name, p in subs[0].choices.items() for leaf in leaves(p, (*path, name))]


def test_bare_planarpy_prints_help(tmp_path, capsys):
    """`planarpy` alone lists the commands and exits 0 (it was a usage error)."""
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: planarpy") and "sim" in out and "markets" in out


def test_version(capsys):
    """`planarpy --version` prints the package's version."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"planarpy {planarpy.__version__} (Python ")


def test_every_subcommand_has_an_example_and_help_for_each_option():
    """Each leaf command's help ends with a runnable example, and every option says what
    it is for."""
    found = leaves(build_parser())
    assert len(found) >= 17 and ("trace", "replay") in found and ("data", "rm") in found
    parser = build_parser()
    for path in found:
        sub = parser
        for name in path:
            sub = next(a for a in sub._actions
                       if isinstance(a, argparse._SubParsersAction)).choices[name]
        text = sub.format_help()
        assert "example" in text and "  planarpy " in text.split("example")[-1], path
        for action in sub._actions:
            if action.option_strings and action.dest not in ("help", "progress"):
                assert action.help, (path, action.option_strings)


def test_trace_help_lists_replay_and_serve_shows_its_defaults(capsys):
    """`trace --help` lists replay; `exchange serve --help` has a description and shows
    the speed and port defaults; `data import --help` says what each option is."""
    assert main(["trace", "--help"]) == 0
    assert "replay" in capsys.readouterr().out
    assert main(["exchange", "serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Binance-compatible" in out and "(default: 1.0)" in out and "(default: 8765)" in out
    assert main(["data", "import", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--exchange EXCHANGE exchange id the candles are stored under" in out
    assert "--timeframe TIMEFRAME the file's timeframe" in out


BROKEN = '''from planarpy import Strategy, call


class Broken(Strategy):
    exchange = "binance"
    quote = "BTC"
    timeframe = "5m"
    universe = ("ETH/BTC",)
    initial_cash = 1.0

    def tick(self, ts):
        if self.i == 40:
            {error}
'''


@pytest.mark.parametrize("error,last_line,kind", [
    ("1 / 0", "1 / 0", "ZeroDivisionError: division by zero"),
    ('call(self, "market_order", "eth/btc", 1.0)', 'call(self, "market_order", "eth/btc", 1.0)',
     "planarpy.core.errors.UnknownSymbol: 'eth/btc' is not in Broken's universe"),
])
def test_a_strategy_error_keeps_its_traceback_to_the_strategy_line(tmp_path, error, last_line,
                                                                   kind):
    """An error raised in a strategy's tick, by Python or by planarpy (an unknown symbol
    given to `call`), shows a traceback whose last frame is the strategy's file and line,
    then the error; exit 1. (A planarpy error was one line with no place in the strategy.)"""
    path = tmp_path / "broken.py"
    path.write_text(BROKEN.format(error=error))
    done = planarpy_cli("sim", str(path), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("Traceback (most recent call last")
    assert lines[-1].startswith(kind), lines[-1]
    frames = [i for i, line in enumerate(lines) if line.lstrip().startswith("File ")]
    assert f'File "{path}", line 13, in tick' in lines[frames[-1]]
    assert lines[frames[-1] + 1].strip() == last_line
    assert "planarpy: error" not in done.stderr


def test_a_strategy_that_fails_to_import_shows_where(tmp_path):
    """A strategy module whose own import fails shows that traceback (it was reported as
    'no strategy named ...' for a module name)."""
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "needs_lib.py").write_text("import no_such_library_here\n")
    done = planarpy_cli("sim", "needs_lib", cwd=tmp_path)
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'no_such_library_here'" in done.stderr
    assert 'needs_lib.py", line 1' in done.stderr


def test_a_user_error_is_one_line_and_planarpy_traceback_shows_all(tmp_path):
    """The same bad value is one line (exit 2), or the whole traceback with
    PLANARPY_TRACEBACK=1."""
    done = planarpy_cli("trace", "info", str(tmp_path / "none"), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("planarpy: error: ")
    done = planarpy_cli("trace", "info", str(tmp_path / "none"), cwd=tmp_path,
                        env={"PLANARPY_TRACEBACK": "1"})
    assert done.returncode == 1 and "Traceback" in done.stderr and "TraceError" in done.stderr


def test_an_os_error_outside_a_strategy_is_one_line(tmp_path, monkeypatch, capsys):
    """An OSError no command turned into its own message still ends in one line naming
    the file and the reason, exit 2."""
    import planarpy.cli.data as cli_data

    def refused(args):
        raise PermissionError(13, "Permission denied", "/srv/data/x")
    monkeypatch.setattr(cli_data, "run_ls", refused)
    code = main(["data", "ls"])
    err = capsys.readouterr().err
    assert code == 2 and err == "planarpy: error: cannot use /srv/data/x: Permission denied\n"
