"""The README's section on parameters, optimisation and charts runs as written: every
code block and every command, in a fresh directory holding the project's strategies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from readmekit import section_blocks

SECTION = "### Parameters, optimisation and charts"


def test_readme_section_runs(repo_root, tmp_path):
    pytest.importorskip("bokeh", reason="the section writes charts: pip install 'planarpy[charts]'")
    (tmp_path / "strategies").symlink_to(repo_root / "strategies")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PLANARPY_HOME": str(tmp_path)}
    found = section_blocks(repo_root, SECTION)
    assert [lang for lang, _ in found] == ["python", "sh", "python"]
    for lang, code in found:
        cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "sh" else [sys.executable, "-c", code]
        out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, f"{lang} block failed:\n{code}\n{out.stderr[-3000:]}"
    for page in ("run.html", "replayed.html", "heat.html"):
        assert "Bokeh" in (tmp_path / page).read_text()
    assert (tmp_path / "studies" / "SmaCross.journal").exists()
