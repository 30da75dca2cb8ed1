"""Real disks that fill up or turn read-only, for the tests of the stores (root only for the
mounts: a test that cannot mount is skipped, saying why; root ignores permissions, so a
read-only directory is a read-only bind mount for root, else chmod)."""

from __future__ import annotations

import errno
import os
import subprocess
import time
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


def _remount_read_only(directory: Path) -> None:
    """Turn the bind mount at `directory` read-only (EBUSY while a file is open for writing
    through it: try again for a while)."""
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)],
                              capture_output=True, text=True)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            subprocess.run(["umount", str(directory)], capture_output=True)
            pytest.skip(f"cannot make the bind mount read-only: {done.stderr.strip()}")
        time.sleep(0.01)


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make `directory` read-only for this process too while the context lasts."""
    if os.geteuid() != 0:
        mode = directory.stat().st_mode
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(mode)
        return
    _mount("--bind", str(directory), str(directory))
    _remount_read_only(directory)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)  # lazy: never left behind


class ReadOnly:
    """Directories made read-only by bind mounts until `undo` (or the end of the test)."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []

    def make(self, path: Path) -> None:
        _mount("--bind", str(path), str(path))
        self.mounted.append(path)
        _remount_read_only(path)

    def undo(self) -> None:
        while self.mounted:
            subprocess.run(["umount", str(self.mounted.pop())], check=False)
