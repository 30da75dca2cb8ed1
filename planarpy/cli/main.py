"""Entry point of the `planarpy` command: discovers the subcommand modules of this package.

What a user gives wrongly (a flag, a config key, a path, a full disk) ends in one line,
`planarpy: error: ...`, and exit code 2. An error raised inside a strategy's own code is a
programming error of that strategy: it keeps its traceback (cut after the strategy's last
frame when planarpy raised it, so it ends at the strategy's file and line) and exits 1.
`PLANARPY_TRACEBACK=1` shows the whole traceback of any error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
from pathlib import Path
from typing import NoReturn, Sequence

from .. import __version__
from ..core.errors import PlanarError
from ..loader import strategy_files
from . import console

PACKAGE = Path(__file__).resolve().parent.parent  # planarpy/


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line in planarpy's form, like every other error; each
    subcommand's help shows its defaults and keeps the line breaks of its examples."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"planarpy: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.HelpFormatter):
    """Examples as written, descriptions wrapped; `(default: X)` after each option's help."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" in text or action.default in (None, False, [], argparse.SUPPRESS)
                or "default" in text or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def example(*lines: str) -> str:
    """The epilog of a subcommand's help: example command lines."""
    return "example" + ("s" if len(lines) > 1 else "") + ":\n" + \
        "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="planarpy",
        description="One trading strategy, three modes: sim (backtest), paper and live.",
        epilog=example("planarpy sim sma_cross", "planarpy sim --help"))
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    package = importlib.import_module("planarpy.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name == "main" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"planarpy.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def version() -> str:
    return f"planarpy {__version__} (Python {sys.version.split()[0]})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; user errors and KeyboardInterrupt become a short message, and
    an output whose reader went away (`| head`) ends it quietly. Bare `planarpy` prints
    the help."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a usage error (2, said already), --help or --version (0)
        return e.code if isinstance(e.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 0
    try:
        code = int(args.func(args) or 0)
        if sys.stdout is not None:
            sys.stdout.flush()  # here, not at exit: a broken pipe is handled below
        return code
    except KeyboardInterrupt:
        console.say("planarpy: interrupted")
        return 130
    except BrokenPipeError:
        console.silence("stdout")
        console.silence("stderr")
        return 141  # as a command killed by SIGPIPE
    except (PlanarError, OSError) as e:
        # a missing install is the machine's problem, not the strategy's, wherever it shows
        if os.environ.get("PLANARPY_TRACEBACK") or (in_strategy(e) and
                                                    not isinstance(e, ImportError)):
            if isinstance(e, PlanarError) and not os.environ.get("PLANARPY_TRACEBACK"):
                console.say(strategy_traceback(e))
                return 1
            raise  # the strategy's own error: Python's traceback, ending where it was raised
        console.say(f"planarpy: error: {' '.join(user_message(e).split())}")  # one line
        return 2


def user_message(e: BaseException) -> str:
    """A PlanarError's message; an OSError's what and where (`cannot use X: reason`)."""
    if not isinstance(e, OSError) or isinstance(e, PlanarError):
        return str(e)
    where = f" {e.filename}" if e.filename else ""
    return f"cannot use{where}: {e.strerror or e}"


def in_strategy(e: BaseException) -> bool:
    """Whether a strategy's own code is on the error's traceback (the error is its own)."""
    files = strategy_files()
    return any(f.filename in files for f in traceback.extract_tb(e.__traceback__))


def strategy_traceback(e: BaseException) -> str:
    """The traceback of a planarpy error a strategy's code caused (an unknown symbol, a
    misspelt side): its own frames and the libraries' it called, down to the strategy's
    last frame, so it ends at the strategy's file and line; then the error."""
    files = strategy_files()
    frames = traceback.extract_tb(e.__traceback__)
    last = max(i for i, f in enumerate(frames) if f.filename in files)
    shown = [f for f in frames[: last + 1]
             if f.filename in files or not Path(f.filename).resolve().is_relative_to(PACKAGE)]
    error = "".join(traceback.format_exception_only(type(e), e)).rstrip()
    return ("Traceback (most recent call last; planarpy's own frames left out):\n"
            + "".join(traceback.format_list(shown)) + error)


if __name__ == "__main__":
    sys.exit(main())
