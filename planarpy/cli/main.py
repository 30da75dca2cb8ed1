"""Entry point of the `planarpy` command: discovers the subcommand modules of this package."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import NoReturn, Sequence

from ..core.errors import PlanarError
from . import console


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line in planarpy's form, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"planarpy: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="planarpy",
        description="One trading strategy, three modes: sim (backtest), paper and live.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    package = importlib.import_module("planarpy.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name == "main" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"planarpy.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; PlanarError and KeyboardInterrupt become a short message, and
    an output whose reader went away (`| head`) ends it quietly."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        if sys.stdout is not None:
            sys.stdout.flush()  # here, not at exit: a broken pipe is handled below
        return code
    except PlanarError as e:
        console.say(f"planarpy: error: {e}")
        return 2
    except KeyboardInterrupt:
        console.say("planarpy: interrupted")
        return 130
    except BrokenPipeError:
        console.silence("stdout")
        console.silence("stderr")
        return 141  # as a command killed by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
