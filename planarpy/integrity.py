"""Checksums and atomic metadata for the Zarr stores planarpy writes (candles, traces).

Every chunk is compressed with zstd and then sealed with zarr's standard `crc32c` codec,
so zarr verifies it on every read and a flipped bit fails the read instead of changing a
value. Measured by bench/trace.py on one flush's chunks, the CRC-32C (hardware-accelerated
by google-crc32c, a zarr dependency) and zstd's own frame checksum cost the same, a few
per cent over no checksum; the CRC was chosen because it covers every stored byte, where
zstd's checksum covers the decompressed content and is switched on by a flag inside the
frame that a flipped bit can clear, and because any Zarr v3 reader knows the codec.

The attributes that commit a state (a committed row count, a kind table) are sealed the
same way: `seal` adds "crc", the CRC-32C of their canonical JSON, and `seal_ok` checks it,
so a damaged or hand-edited commit is found rather than trusted.

Both stores rely on zarr's LocalStore writing every file to a temporary and renaming it
(zarr 3.1.3 and later; before, a kill while the trace writer rewrites its last, partly
committed chunk truncated committed data) and on `Array.with_config` (3.1.6): `check_zarr`
refuses an older zarr; the stores call it when they are imported. zarr itself is imported
only by what needs it (about 40% of planarpy's import time, which an optimisation worker
that reads its candles from a memory map, or a sim on bundled data, never needs).

This module imports nothing of planarpy: the OHLCV store and the EventTrace both use it.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Iterable

import google_crc32c
import numpy as np

SEAL = "crc"
ZARR_FLOOR = (3, 1, 6)


def check_zarr() -> None:
    """ImportError naming the fix if the installed zarr is older than `ZARR_FLOOR`."""
    import zarr

    found = tuple(int(p) for p in re.findall(r"\d+", zarr.__version__)[:3])
    if found < ZARR_FLOOR:
        need = ".".join(map(str, ZARR_FLOOR))
        raise ImportError(f"planarpy needs zarr {need} or newer (found {zarr.__version__}) "
                          "for atomic chunk writes and the API its stores use: pip install "
                          f"'zarr>={need},<4'")


def compressors() -> list[Any]:
    """The codecs after serialisation of every array planarpy creates: zstd, then CRC-32C."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return [ZstdCodec(level=1), Crc32cCodec()]


def _canonical(attributes: dict[str, Any]) -> bytes:
    body = {k: v for k, v in attributes.items() if k != SEAL}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def seal(attributes: dict[str, Any]) -> dict[str, Any]:
    """A copy of `attributes` with "crc" set to the CRC-32C of the rest."""
    out = dict(attributes)
    out[SEAL] = google_crc32c.value(_canonical(attributes))
    return out


def seal_ok(attributes: dict[str, Any]) -> bool | None:
    """True if the seal matches, False if it does not, None if there is no seal."""
    crc = attributes.get(SEAL)
    if crc is None:
        return None
    return isinstance(crc, int) and crc == google_crc32c.value(_canonical(attributes))


def chunk_problem(path: Path) -> str | None:
    """What is wrong with one chunk file sealed by `compressors()`, or None if it is whole."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if len(data) < 5 or google_crc32c.value(data[:-4]) != int.from_bytes(data[-4:], "little"):
        return "checksum mismatch"
    return None


def damaged_chunks(array_dir: Path, chunks: Iterable[int], ndim: int = 1,
                   verified: dict[Path, tuple[int, int, int]] | None = None) -> list[str]:
    """'chunk N: why' for each of `chunks` (indices along axis 0) that is missing or damaged.

    Reads raw bytes and checks only the CRC, without decompressing: cheap enough to run
    before every append. `verified` remembers files found whole (by inode, size and
    modification time), which are then not read again while unchanged.
    """
    out = []
    for c in chunks:
        path = array_dir / "/".join(["c", str(c), *["0"] * (ndim - 1)])
        try:
            st = path.stat()
        except FileNotFoundError:
            out.append(f"chunk {c}: missing")
            continue
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        if verified is not None and verified.get(path) == signature:
            continue
        problem = chunk_problem(path)
        if problem is not None:
            out.append(f"chunk {c}: {problem}")
        elif verified is not None:
            verified[path] = signature
    return out


def read_checked(array: Any, start: int, stop: int, fill: Any) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """array[start:stop] (along axis 0), and (chunk index, why) for each chunk that cannot
    be read (missing from a format without checksums reads as the fill value; failing its
    checksum or not decoding raises): those rows read as `fill`."""
    try:
        return np.asarray(array[start:stop]), []
    except Exception:
        pass
    out = np.full((stop - start, *array.shape[1:]), fill, dtype=array.dtype)
    size, bad = array.chunks[0], []
    for c0 in range(start - start % size, stop, size):
        a, b = max(start, c0), min(stop, c0 + size)
        try:
            out[a - start:b - start] = array[a:b]
        except Exception as e:
            bad.append((c0 // size, why_unreadable(e)))
    return out, bad


def why_unreadable(e: BaseException) -> str:
    """A read error in a few words: "checksum mismatch", or its type and message."""
    text = str(e)
    if "checksum" in text.lower():
        return "checksum mismatch"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def write_json(path: Path, doc: Any, fsync: bool = False) -> None:
    """Replace `path` with `doc` as JSON atomically."""
    write_atomic(path, json.dumps(doc, indent=2).encode(), fsync)


def write_atomic(path: Path, data: bytes, fsync: bool = False) -> None:
    """Replace `path` with `data` atomically: a temporary file beside it, then a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def format_version(value: Any, name: str) -> int | None:
    """N from a format attribute "<name>/N", None if `value` is not one."""
    prefix, _, version = value.partition("/") if isinstance(value, str) else ("", "", "")
    return int(version) if prefix == name and version.isdigit() else None


def read_group_meta(path: Path) -> dict[str, Any]:
    """The parsed zarr.json of a Zarr v3 group at directory `path`.

    FileNotFoundError if there is none; ValueError naming the file if it is not readable
    JSON of a v3 group.
    """
    meta_path = path / "zarr.json"
    raw = meta_path.read_bytes()
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{meta_path} is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("zarr_format") != 3 or meta.get("node_type") != "group":
        raise ValueError(f"{meta_path} is not the metadata of a Zarr v3 group")
    return meta
