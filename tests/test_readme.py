"""The README is executable: every code block is run by a test, in a fresh temporary
project (the shipped strategies copied in, no keys, no config but what a block says) with
no network: pip installs offline, ccxt's HTTP goes through a dead proxy unless it is for
127.0.0.1, and the local exchange stands in for Binance.

`RUNNERS` names the test that runs each block; a block added to the README without one
fails `test_every_block_has_a_runner`, so the README cannot rot. Synopses (```text) are
checked against the command line's own help: every command and flag they show exists.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import pytest

from readmekit import all_blocks, blocks_of, commands

# (heading, language, n-th block of that language under it) -> the test that runs it
RUNNERS = {
    ("## Set up", "sh", 0): "test_set_up_installs_offline_and_runs_the_example",
    ("## Set up", "sh", 1): "test_set_up_installs_the_test_extra_and_runs_pytest",
    ("### Writing a strategy", "python", 0): "test_writing_a_strategy_runs",
    ("### Indicators", "python", 0): "test_readme_indicators.py::test_readme_indicator_section_runs",
    ("#### Paper mode", "text", 0): "test_synopses_match_the_command_line",  # and the
    # commands in the prose: test_inline_commands_match_the_command_line
    ("#### Live mode", "text", 0): "test_synopses_match_the_command_line",
    ("#### Live mode", "toml", 0): "test_live_stop_config_is_read_as_the_readme_says",
    ("#### Live mode", "python", 0): "test_live_from_python_against_the_local_exchange",
    ("### Conditional orders", "python", 0): "test_readme_conditional.py::test_the_conditional_orders_section_runs",
    ("#### Supervision", "toml", 0): "test_readme_supervision.py::test_the_supervision_config_block_is_valid",
    ("### Risk", "toml", 0): "test_readme_risk.py::test_the_risk_section_config_is_valid",
    ("### Risk", "python", 0): "test_readme_risk.py::test_the_risk_section_code_runs",
    ("### Event traces", "sh", 0): "test_event_trace_commands_run",
    ("### Parameters, optimisation and charts", "python", 0): "test_readme_research.py::test_readme_section_runs",
    ("### Parameters, optimisation and charts", "sh", 0): "test_readme_research.py::test_readme_section_runs",
    ("### Parameters, optimisation and charts", "python", 1): "test_readme_research.py::test_readme_section_runs",
    ("### Config and data", "sh", 0): "test_fetch_import_sim_rm_against_the_local_exchange",
    ("### Command line", "text", 0): "test_synopses_match_the_command_line",
}

TESTS = Path(__file__).parent


def test_every_block_has_a_runner(repo_root):
    """Each block of the README is named in RUNNERS, and each runner named exists."""
    seen: dict[tuple[str, str], int] = {}
    keys = []
    for heading, lang, _ in all_blocks(repo_root):
        n = seen.get((heading, lang), 0)
        seen[(heading, lang)] = n + 1
        keys.append((heading, lang, n))
    assert sorted(keys) == sorted(RUNNERS), "a README block without a test (or a stale entry)"
    assert {lang for _, lang, _ in keys} <= {"sh", "python", "toml", "text"}
    for name in set(RUNNERS.values()):
        file, _, func = name.rpartition("::")
        source = (TESTS / file).read_text() if file else Path(__file__).read_text()
        assert f"def {func}(" in source, name


def test_keys_readme_points_at_a_section_that_exists(repo_root):
    """user/keys/README.md names the README's "Keys" section: it must exist."""
    note = (repo_root / "user" / "keys" / "README.md").read_text()
    (section,) = re.findall(r'section "([^"]+)"', note)
    assert f"#### {section}\n" in (repo_root / "README.md").read_text()


# ---- the fresh project -------------------------------------------------------------------

@pytest.fixture
def project(repo_root, tmp_path):
    """A fresh project: the shipped strategies, an empty user/, the command on PATH, and an
    environment without the network, keys or another project's settings."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(repo_root / "strategies", root / "strategies",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "user").mkdir()
    return root


def offline_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PLANARPY_", "PYTEST_", "PIP_")) and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    dead = "http://127.0.0.1:9"  # nothing listens: any request that is not local fails
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PLANARPY_HOME=str(root), HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead,
               https_proxy=dead, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               PIP_NO_INDEX="1", MPLBACKEND="Agg")
    return env


def run_sh(command: str, root: Path, env: dict[str, str], timeout: float = 600) -> str:
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=root, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"$ {command}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def run_python(code: str, root: Path, env: dict[str, str], timeout: float = 600) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"block failed:\n{code}\n{out.stderr[-3000:]}"
    return out.stdout


# ---- Set up ------------------------------------------------------------------------------

@pytest.fixture
def checkout(repo_root, tmp_path):
    """A copy of the repository's files with a `.venv` that sees this environment's
    packages (so `pip install .` finds every dependency and the build backend offline);
    the block's `python3 -m venv .venv` then runs over it as written."""
    root = tmp_path / "checkout"
    skip = shutil.ignore_patterns(".git", ".venv*", "__pycache__", "*.egg-info", "build",
                                  ".pytest_cache", ".hypothesis", "studies", "user", "traces")
    shutil.copytree(repo_root, root, ignore=skip)
    for folder in ("user", "traces"):
        shutil.copytree(repo_root / folder, root / folder,
                        ignore=lambda d, names: [n for n in names if n not in
                                                 ("README.md", "planar.toml", "keys")])
    subprocess.run([sys.executable, "-m", "venv", str(root / ".venv")], check=True)
    purelib = subprocess.run([str(root / ".venv" / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # first on sys.path, ahead of the venv's own old setuptools: this environment's
    # packages but planarpy (installed here or editable), so `pip install .` installs the
    # checkout and `import planarpy` finds that copy
    shim = tmp_path / "test-env"
    shim.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "planarpy" not in entry.name.lower() and entry.suffix != ".pth":
            (shim / entry.name).symlink_to(entry)
    Path(purelib, "_planarpy_test_env.pth").write_text(f"import sys; sys.path.insert(0, {str(shim)!r})\n")
    return root


def setup_env(root: Path) -> dict[str, str]:
    env = offline_env(root)
    env.pop("PLANARPY_HOME")  # the checkout is the project, as for a user who cloned it
    env["PIP_NO_BUILD_ISOLATION"] = "0"  # pip's spelling of --no-build-isolation
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


@pytest.mark.slow
def test_set_up_installs_offline_and_runs_the_example(repo_root, checkout):
    (block,) = blocks_of(repo_root, "## Set up", "sh")[:1]
    out = run_sh(block, checkout, setup_env(checkout))
    assert "strategy        SmaCross" in out and "final equity" in out
    installed = subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-c",
                                "import planarpy; print(planarpy.__file__)"], cwd="/",
                               capture_output=True, text=True, check=True).stdout
    assert str(checkout / ".venv") in installed  # the installed copy ran, not ours


@pytest.mark.slow
def test_set_up_installs_the_test_extra_and_runs_pytest(repo_root, checkout):
    """The whole suite is this one: the block runs as written, with pytest told (by
    PYTEST_ADDOPTS) to run one file of it rather than itself again."""
    block = blocks_of(repo_root, "## Set up", "sh")[1]
    env = setup_env(checkout)
    env["PYTEST_ADDOPTS"] = "-q -p no:cacheprovider tests/test_examples.py"
    out = run_sh(block, checkout, env)
    assert re.search(r"\b4 passed\b", out), out[-2000:]


# ---- Writing a strategy --------------------------------------------------------------------

def test_writing_a_strategy_runs(repo_root, project):
    """The Dip example backtests as written, and it sells as well as buys."""
    (block,) = blocks_of(repo_root, "### Writing a strategy", "python")
    out = run_python(block, project, offline_env(project))
    summary = eval(out.strip(), {})  # a dict of numbers and strings
    assert summary["trades"] >= 10 and summary["round_trips"] >= 5


# ---- Synopses --------------------------------------------------------------------------------

def synopsis_lines(repo_root: Path) -> list[str]:
    lines = []
    for heading, lang, code in all_blocks(repo_root):
        if lang == "text":
            lines += [c for c in commands(code) if c.startswith("planarpy")]
    return lines


def help_of(words: list[str], env: dict[str, str], root: Path) -> str:
    out = subprocess.run(["planarpy", *words, "--help"], cwd=root, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, f"planarpy {' '.join(words)} --help: {out.stderr}"
    return out.stdout


def synopsis_commands(part: str) -> list[list[str]]:
    """The commands one synopsis names: "planarpy markets fetch | ls ..." -> [markets fetch],
    [markets ls]; an alternative of one word after one of two shares its first word."""
    head = re.match(r"planarpy((?:\s+(?:[a-z]+|\|))*)", part.replace("|", " | ")).group(1)
    out: list[list[str]] = []
    for alt in (a.split() for a in head.split("|")):
        out.append(out[-1][:1] + alt if len(alt) == 1 and out and len(out[-1]) == 2 else alt)
    return out


def test_synopses_match_the_command_line(repo_root, project):
    """Every command a synopsis shows exists, and every flag it shows is in that command's
    --help (`a | b` lists alternatives; `...` stands for more)."""
    env = offline_env(project)
    checked = set()
    for line in synopsis_lines(repo_root):
        for part in re.split(r"\s{3,}", line):  # two synopses may share a line
            if not part.startswith("planarpy"):
                continue
            cmds = synopsis_commands(part)
            flags = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", part))
            for cmd in cmds:
                text = help_of(cmd, env, project)
                if len(cmds) == 1:
                    missing = sorted(f for f in flags if not re.search(rf"(?<![\w-]){f}\b", text))
                    assert not missing, f"{part!r}: {missing} not in `planarpy {' '.join(cmd)} --help`"
                checked.add(" ".join(cmd))
    assert {"sim", "paper", "live", "optimize", "chart", "new", "fetch", "data import",
            "data rm", "markets fetch", "markets ls", "trace replay", "exchange serve"} <= checked


def test_inline_commands_match_the_command_line(repo_root, project):
    """The commands the README's prose names (`planarpy markets ls EXCHANGE`, `planarpy
    exchange serve [--port 8765] ...`) exist, with the flags they show."""
    text = re.sub(r"^```.*?^```", "", (repo_root / "README.md").read_text(), flags=re.S | re.M)
    spans = [" ".join(s.split()) for s in re.findall(r"`(planarpy [a-z][^`]*)`", text)]
    env = offline_env(project)
    checked = set()
    for span in spans:
        flags = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", span))
        for cmd in synopsis_commands(span):
            help_text = help_of(cmd, env, project)
            missing = sorted(f for f in flags if not re.search(rf"(?<![\w-]){f}\b", help_text))
            assert not missing, f"`{span}`: {missing} not in `planarpy {' '.join(cmd)} --help`"
            checked.add(" ".join(cmd))
    assert {"new", "exchange serve", "paper", "live", "markets ls", "data upgrade"} <= checked


def test_bench_commands_named_in_the_prose_take_the_flags_shown(repo_root):
    """The benchmarks the README names (`python bench/sim.py`, `python bench/compare.py
    [--fast 10 --slow 30]`...) exist and take the flags it shows: each is asked for its
    --help (a benchmark itself never runs as a test)."""
    text = re.sub(r"^```.*?^```", "", (repo_root / "README.md").read_text(), flags=re.S | re.M)
    spans = {" ".join(s.split()) for s in re.findall(r"`(?:python )?(bench/[\w.]+\.py[^`]*)`", text)}
    named = {span.split()[0] for span in spans}
    assert {"bench/sim.py", "bench/compare.py", "bench/live.py", "bench/trace.py"} <= named
    helps = {}
    for script in sorted(named):
        out = subprocess.run([sys.executable, script, "--help"], cwd=repo_root, text=True,
                             capture_output=True, timeout=120)
        assert out.returncode == 0, f"{script} --help: {out.stderr[-2000:]}"
        helps[script] = out.stdout
    for span in spans:
        script = span.split()[0]
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", span))
        missing = sorted(f for f in flags if f not in helps[script])
        assert not missing, f"`{span}`: {missing} not in `python {script} --help`"


# ---- Live mode -------------------------------------------------------------------------------

def test_live_stop_config_is_read_as_the_readme_says(repo_root, tmp_path):
    """The [live] tables decide on_stop and stop_timeout: SmaCross closes, others cancel."""
    from planarpy.exchanges import exchange_config
    from planarpy.modes.runtime.stopping import stop_settings
    (block,) = blocks_of(repo_root, "#### Live mode", "toml")
    cfg = tomllib.loads(block)
    xcfg = exchange_config("binance", cfg)
    assert stop_settings(cfg, "live", xcfg, "SmaCross") == ("close", 30.0)
    assert stop_settings(cfg, "live", xcfg, "Other") == ("cancel", 30.0)


@pytest.fixture
def served(project):
    """`planarpy exchange serve --port 0` as the README runs it, in real time; its address
    and the keys it printed."""
    env = offline_env(project)
    proc = subprocess.Popen(["planarpy", "exchange", "serve", "--port", "0"], cwd=project,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("secret:") for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        url = re.search(r"local exchange at (http://127\.0\.0\.1:\d+)", text).group(1)
        keys = (re.search(r"api key: (\S+)", text).group(1), re.search(r"secret:\s+(\S+)", text).group(1))
        yield url, keys
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_live_from_python_against_the_local_exchange(repo_root, project, served):
    """The Python block trades on `planarpy exchange serve` with the keys it prints (its
    port is the one the OS gave), and records its trace as the README says."""
    url, keys = served
    (block,) = blocks_of(repo_root, "#### Live mode", "python")
    assert f'ApiKeys("{keys[0]}", "{keys[1]}")' in block, "the block's keys are not serve's"
    assert "http://127.0.0.1:8765" in block
    code = block.replace("http://127.0.0.1:8765", url) + \
        "\nprint(report.complete, report.still_open)\n"
    out = run_python(code, project, offline_env(project), timeout=300)
    assert out.strip().splitlines()[-1].startswith("True")
    from planarpy.trace import replay_from_trace
    report = replay_from_trace("sma_cross", project / "traces" / "SmaCross" / "binance",
                               settings={})
    assert report.ok, report
    assert [t.amount for t in report.state.trades] == [0.5]


# ---- Event traces ----------------------------------------------------------------------------

def test_event_trace_commands_run(repo_root, project):
    """On the trace `planarpy sim sma_cross --record` writes where a live run's goes, each
    command runs as written; `--follow` prints the events, says it follows, and stops at
    Ctrl-C."""
    env = offline_env(project)
    run_sh("planarpy sim sma_cross --record", project, env)
    (block,) = blocks_of(repo_root, "### Event traces", "sh")
    for command in commands(block):
        if "--follow" in command:
            follow(command, project, env)
        else:
            run_sh(command, project, env)
    assert (project / "events.csv").read_text().count("\n") > 100


def follow(command: str, root: Path, env: dict[str, str]) -> None:
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(20)]
        assert all(" trade_created " in line for line in lines), lines
        assert "following" in proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err


# ---- Config and data -------------------------------------------------------------------------

BTC = dict(symbol="BTC/USDT", id="BTCUSDT", base="BTC", quote="USDT", settle=None, kind="spot",
           amount_step=0.00001, price_step=0.01, min_amount=0.00001, min_cost=5.0,
           maker=0.001, taker=0.001)
JAN, FEB = 1_704_067_200_000, 1_706_745_600_000  # 2024-01-01 and 2024-02-01, UTC
MY_STRATEGY = '''from planarpy import Strategy, call
from planarpy.indicators import sma


class MyStrategy(Strategy):
    exchange = "binance"
    quote = "USDT"
    timeframe = "1m"
    universe = ("BTC/USDT",)
    initial_cash = 10_000.0
    warmup = 60
    lookback = 60

    def indicators(self, ai):
        return {"mean": sma(ai.ohlcv.close, 60)}

    def tick(self, ts):
        ai = self.assets[0]
        price, mean = ai.ohlcv.close.item(self.i), ai.ind["mean"][self.i]
        if ai.free_balance < ai.market.min_amount and price < 0.995 * mean:
            call(self, "market_order", ai, ai.floor_amount(0.5 * self.free_cash / price), side="buy")
        elif ai.free_balance >= ai.market.min_amount and price > mean:
            call(self, "market_order", ai, ai.floor_amount(ai.free_balance), side="sell")
'''


def write_candles(path: Path, start: int, stop: int, seed: int) -> Path:
    """One-minute BTC/USDT candles from `start` to `stop` (epoch ms), a seeded random walk."""
    import numpy as np
    rng = np.random.default_rng(seed)
    times = np.arange(start, stop, 60_000)
    close = 42_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, len(times))))
    open_ = np.concatenate([[close[0]], close[:-1]])
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for t, o, c, v in zip(times, open_, close, rng.uniform(1, 20, len(times))):
            w.writerow([int(t), f"{o:.2f}", f"{max(o, c) * 1.0004:.2f}",
                        f"{min(o, c) * 0.9996:.2f}", f"{c:.2f}", f"{v:.5f}"])
    return path


@pytest.mark.slow
def test_fetch_import_sim_rm_against_the_local_exchange(repo_root, project, tmp_path):
    """The block as written, with the project's planar.toml pointing `binance` at a local
    exchange that serves BTC/USDT 1m for January 2024 (its clock at 1 February); the user's
    own CSV (February's first day) and strategy are in the project."""
    from planarpy.core.market import Market
    from planarpy.localexchange import LocalExchange
    from planarpy.localexchange.clock import Clock
    jan = write_candles(tmp_path / "jan.csv", JAN, FEB, 1)
    write_candles(project / "my_candles.csv", FEB, FEB + 86_400_000, 2)
    (project / "strategies" / "my_strategy.py").write_text(MY_STRATEGY)
    with LocalExchange(markets=[Market(**BTC)], data={"BTC/USDT": str(jan)},
                       clock=Clock(start=FEB), origin=FEB) as lx:
        (project / "user" / "planar.toml").write_text(
            f'[exchanges.binance]\nurl = "{lx.url}"\nrate_limit = false\n')
        env = offline_env(project)
        (block,) = blocks_of(repo_root, "### Config and data", "sh")
        outputs = [run_sh(c, project, env) for c in commands(block)]
    fetched, imported, listed, simmed, removed = outputs
    assert re.search(r"binance BTC/USDT 1m: 44640 candles added", fetched), fetched
    assert "1440" in imported, imported
    assert re.search(r"BTC/USDT\s+1m", listed) and "46080" in listed, listed
    assert "strategy        MyStrategy" in simmed and "2024-01-05" in simmed, simmed
    assert (project / "backtest.png").stat().st_size > 10_000
    assert "BTC/USDT" in removed
    assert not list((project / "user" / "data" / "binance").glob("*BTC*1m*"))
