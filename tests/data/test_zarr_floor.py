"""The zarr that both stores rely on: a release with atomic file writes and the API they use."""

import re
import tomllib
from pathlib import Path

import pytest
import zarr

from planarpy import integrity


def floor(spec: str) -> tuple[int, ...]:
    match = re.search(r">=\s*([\d.]+)", spec)
    assert match, spec
    return tuple(int(p) for p in match.group(1).split("."))


def test_the_declared_zarr_floor_has_what_the_stores_need(repo_root: Path) -> None:
    """pyproject allowed zarr>=3.1: before 3.1.3 LocalStore wrote chunks in place (a SIGKILL
    while the writer rewrites the last, partly committed chunk truncates committed data),
    and before 3.1.6 Array.with_config, which the trace writer calls, does not exist (every
    flush failed). The floor and the runtime check agree."""
    deps = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in deps if re.match(r"zarr\b", d))
    assert floor(spec) >= integrity.ZARR_FLOOR == (3, 1, 6)


@pytest.mark.parametrize("version", ["3.1.2", "3.0.8", "3.1.5"])
def test_an_older_zarr_is_a_clear_error(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zarr, "__version__", version)
    with pytest.raises(ImportError, match=rf"planarpy needs zarr 3.1.6 or newer \(found "
                                          rf"{re.escape(version)}\).*pip install"):
        integrity.check_zarr()


@pytest.mark.parametrize("version", ["3.1.6", "3.2.0.dev4+g1234", "3.10.0"])
def test_a_recent_zarr_passes(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zarr, "__version__", version)
    integrity.check_zarr()
