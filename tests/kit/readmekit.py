"""The README's code blocks, by section, for the tests that run them as written."""

from __future__ import annotations

import re
from pathlib import Path


def section_blocks(repo_root: Path, heading: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block under `heading`, up to the next "### "."""
    text = (repo_root / "README.md").read_text()
    start = text.index(heading)
    body = text[start:text.index("\n### ", start + len(heading))]
    return re.findall(r"```(\w+)\n(.*?)```", body, re.S)


def all_blocks(repo_root: Path) -> list[tuple[str, str, str]]:
    """(heading, language, code) of every fenced block of the README, in order; the heading
    is the nearest one above it, of any level ("#### Live mode")."""
    text = (repo_root / "README.md").read_text()
    heads = [(m.start(), m.group(0)) for m in re.finditer(r"^#{2,4} .*$", text, re.M)]
    out = []
    for m in re.finditer(r"^```(\w+)\n(.*?)^```", text, re.S | re.M):
        heading = [h for at, h in heads if at < m.start()][-1]
        out.append((heading, m.group(1), m.group(2)))
    return out


def blocks_of(repo_root: Path, heading: str, lang: str | None = None) -> list[str]:
    """The code of the blocks right under `heading` (exactly that heading line)."""
    return [code for h, lg, code in all_blocks(repo_root)
            if h == heading and (lang is None or lg == lang)]


def commands(code: str) -> list[str]:
    """The commands of a shell block: one per line, `\\`-continued lines joined."""
    return [c.strip() for c in re.sub(r"\\\n\s*", " ", code).splitlines() if c.strip()]
