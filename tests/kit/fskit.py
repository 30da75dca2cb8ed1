"""File systems that fail for real: a read-only directory, a small tmpfs that fills up.

Root ignores permissions, so `read_only` uses a read-only bind mount for root (else
chmod); `small_tmpfs` needs root to mount. Each skips the test where it cannot be done.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make `directory` read-only for this process too: a read-only bind mount for root
    (who ignores permissions), else permissions; skip where neither is possible."""
    if os.geteuid() != 0:
        mode = directory.stat().st_mode
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(mode)
        return
    bound = subprocess.run(["mount", "--bind", str(directory), str(directory)],
                           capture_output=True, text=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.strip()}")
    deadline = time.monotonic() + 30
    while True:  # EBUSY while a file is open for writing through the mount: try again
        done = subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)],
                              capture_output=True, text=True)
        if done.returncode == 0:
            break
        if time.monotonic() > deadline:
            subprocess.run(["umount", str(directory)], capture_output=True)
            pytest.skip(f"cannot make the bind mount read-only: {done.stderr.strip()}")
        time.sleep(0.01)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)  # lazy: never left behind


@contextlib.contextmanager
def small_tmpfs(mount: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `mount` (created) for the block (root only)."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
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
