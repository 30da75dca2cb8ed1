"""The README's section on indicators runs as written: every code block, in a fresh
directory holding the project's strategies."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from readmekit import section_blocks

SECTION = "### Indicators"


def test_readme_indicator_section_runs(repo_root, tmp_path):
    pytest.importorskip("talib", reason="the section uses rsi: pip install 'planarpy[talib]'")
    (tmp_path / "strategies").symlink_to(repo_root / "strategies")
    env = {**os.environ, "PLANARPY_HOME": str(tmp_path)}
    found = section_blocks(repo_root, SECTION)
    assert [lang for lang, _ in found] == ["python"]
    for _, code in found:
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"block failed:\n{code}\n{out.stderr[-3000:]}"
    summary = ast.literal_eval(out.stdout.strip())
    assert summary["trades"] > 20
