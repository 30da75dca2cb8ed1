"""Real disks that fill up or turn read-only, for the tests of the stores (root only: a test
that cannot mount is skipped, saying why)."""

from __future__ import annotations

import errno
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (needs root): {done.stderr.strip()}")


@contextmanager
def small_tmpfs(mount: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `mount` (created) while the context lasts."""
    mount.mkdir(exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount))
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int) -> Path:
    """Fill the file system, then free `leave` bytes; the filler file."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


class ReadOnly:
    """Directories made read-only by bind mounts until `undo` (or the end of the test)."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []

    def make(self, path: Path) -> None:
        _mount("--bind", str(path), str(path))
        self.mounted.append(path)
        _mount("-o", "remount,bind,ro", str(path))

    def undo(self) -> None:
        while self.mounted:
            subprocess.run(["umount", str(self.mounted.pop())], check=False)
