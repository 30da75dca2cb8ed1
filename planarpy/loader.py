"""Finding a strategy class by name (through user/planar.toml) or by file path."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

from .config import load_config, project_dir
from .core.errors import StrategyNotFound
from .strategy import Strategy

_FILES: set[str] = set()  # the files strategies were loaded from, as tracebacks name them
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def strategy_files() -> frozenset[str]:
    """Files of the strategy modules loaded so far: a traceback through one of them is a
    strategy's own error, not planarpy's or the user's input."""
    return frozenset(_FILES)


def _load_file(path: Path, name: str | None = None) -> ModuleType:
    """Import a .py file as module `name` (default planarpy_strategy_STEM)."""
    name = name or f"planarpy_strategy_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StrategyNotFound(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _FILES.add(str(spec.origin))
    spec.loader.exec_module(module)
    return module


def load_module(path: str | Path, name: str) -> ModuleType:
    """Import the file `path` as module `name` (a worker finding a strategy file again)."""
    return _load_file(Path(path), name)


def strategy_class(module: ModuleType, origin: str) -> type[Strategy]:
    """The one Strategy subclass defined in `module` (or the one named by `STRATEGY`)."""
    named = getattr(module, "STRATEGY", None)
    if isinstance(named, type) and issubclass(named, Strategy):
        return _noted(named)
    found = [c for _, c in inspect.getmembers(module, inspect.isclass)
             if issubclass(c, Strategy) and c is not Strategy and c.__module__ == module.__name__]
    if len(found) != 1:
        what = "no Strategy subclass" if not found else \
            f"{len(found)} Strategy subclasses ({', '.join(c.__name__ for c in found)})"
        raise StrategyNotFound(f"{origin} defines {what}; define one, or set STRATEGY = TheClass")
    return _noted(found[0])


def _noted(cls: type[Strategy]) -> type[Strategy]:
    """`cls`, with the file of the module that defines it noted as a strategy's."""
    origin = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if origin:
        _FILES.add(origin)
    return cls


def find_strategy(name_or_path: str, config: dict | None = None) -> type[Strategy]:
    """Resolve a strategy: a .py path, a name in planar.toml [strategies], a file in
    strategies/, or an importable module name."""
    cfg = load_config() if config is None else config
    candidate = Path(name_or_path)
    if candidate.suffix == ".py":
        if not candidate.is_file():
            raise StrategyNotFound(f"strategy file {candidate} does not exist")
        return strategy_class(_load_file(candidate), str(candidate))
    target = (cfg.get("strategies") or {}).get(name_or_path)
    if target is not None:
        p = Path(target)
        if not p.is_absolute():
            p = project_dir() / p
        if p.suffix == ".py":
            if not p.is_file():
                raise StrategyNotFound(f"planar.toml maps {name_or_path!r} to {p}, which does not exist")
            return strategy_class(_load_file(p), str(p))
        name_or_path = str(target)
    local = project_dir() / "strategies" / f"{name_or_path}.py"
    if local.is_file():
        return strategy_class(_load_file(local), str(local))
    spec = _module_spec(name_or_path)
    if spec is None:
        known = sorted(p.stem for p in (project_dir() / "strategies").glob("*.py")
                       if not p.stem.startswith("_"))
        named = sorted((cfg.get("strategies") or {}))
        raise StrategyNotFound(
            f"no strategy named {name_or_path!r}: not in planar.toml [strategies] "
            f"({', '.join(named) or 'none'}), not in strategies/ ({', '.join(known) or 'none'}), "
            "not an importable module, and not a .py file")
    if spec.origin:
        _FILES.add(spec.origin)
    return strategy_class(importlib.import_module(name_or_path), name_or_path)


def _module_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """The spec of module `name` if it can be imported (a module's own import errors are
    left to its import, where they show as that module's), else None."""
    if not _MODULE_NAME.fullmatch(name):
        return None
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a parent package that does not exist
        return None
