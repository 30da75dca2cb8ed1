"""user/planar.toml: where strategies, markets and run options are configured."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from .core.errors import ConfigError


# the tables planar.toml may have; each is checked where it is read
TABLES = ("strategies", "markets", "sim", "exchanges", "live", "paper", "risk", "alerts",
          "shadow")


def project_dir() -> Path:
    """The project root: $PLANARPY_HOME, else the current directory."""
    return Path(os.environ.get("PLANARPY_HOME") or os.getcwd())


def default_config_path() -> Path:
    return project_dir() / "user" / "planar.toml"


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """Read planar.toml. A missing default file is an empty config; a named one must exist."""
    explicit = path is not None
    p = Path(path) if explicit else default_config_path()
    if not p.exists():
        if explicit:
            raise ConfigError(f"config file {p} does not exist")
        return {}
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p} is not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {p}: {e}") from None
    unknown = sorted(set(data) - set(TABLES))
    if unknown:
        raise ConfigError(f"{p}: unknown table(s) or key(s) {', '.join(unknown)} at the top "
                          f"level; known tables: {', '.join(TABLES)}")
    for table in TABLES:
        if table in data and not isinstance(data[table], dict):
            raise ConfigError(f"{p}: [{table}] must be a table, got {type(data[table]).__name__}")
    for name, target in (data.get("strategies") or {}).items():
        if not isinstance(target, str) or not target:
            raise ConfigError(f"{p}: [strategies] {name} must be a path or module name "
                              f"(a string), not {target!r}")
    return data
