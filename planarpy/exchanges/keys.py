"""API keys: read from user/keys/ or the environment, never shown.

A key file is `user/keys/NAME.toml` (or .json) with `apiKey` and `secret` (and optionally
`password`). Environment variables `PLANARPY_<NAME>_API_KEY` / `_SECRET` / `_PASSWORD`
take precedence. The values live only in the ccxt client; reprs and errors show `***`.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import attrs

from ..config import project_dir
from ..core.errors import ConfigError

SECRET_FIELDS = ("apiKey", "secret", "password", "privateKey", "uid")


@attrs.frozen(slots=True, repr=False)
class ApiKeys:
    """Credentials for one exchange account; the repr never shows them."""

    api_key: str = ""
    secret: str = ""
    password: str = ""

    def __bool__(self) -> bool:
        return bool(self.api_key and self.secret)

    def __repr__(self) -> str:
        return f"ApiKeys(api_key={'***' if self.api_key else ''!r}, secret=***)"

    def ccxt(self) -> dict[str, str]:
        out = {"apiKey": self.api_key, "secret": self.secret}
        if self.password:
            out["password"] = self.password
        return out

    def redact(self, text: str) -> str:
        """`text` with every credential replaced by ***."""
        for value in (self.api_key, self.secret, self.password):
            if value:
                text = text.replace(value, "***")
        return text


def load_keys(name: str, keys_dir: str | Path | None = None) -> ApiKeys:
    """Keys of account `name` from the environment or `keys_dir` (default user/keys of the
    project: $PLANARPY_HOME, else the current directory, as for the config)."""
    prefix = f"PLANARPY_{name.upper().replace('-', '_')}_"
    env = {k: os.environ.get(prefix + k.upper()) for k in ("api_key", "secret", "password")}
    if env["api_key"] and env["secret"]:
        return ApiKeys(env["api_key"], env["secret"], env["password"] or "")
    folder = Path(keys_dir) if keys_dir is not None else project_dir() / "user" / "keys"
    for suffix in (".toml", ".json"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return _read(path)
    return ApiKeys()


def _read(path: Path) -> ApiKeys:
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        # the parser's message may quote the file's content: keep it out of the error
        raise ConfigError(f"key file {path} is not valid {path.suffix[1:].upper()} "
                          f"({type(e).__name__})") from None
    if not isinstance(data, dict) or not data.get("apiKey") or not data.get("secret"):
        raise ConfigError(f"key file {path} must define apiKey and secret")
    return ApiKeys(str(data["apiKey"]), str(data["secret"]), str(data.get("password", "")))
