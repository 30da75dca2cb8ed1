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
