"""The layer rules of DESIGN.md section 1 and the README's "Layout", read from the source.

Every import in the package (relative or absolute, at any depth, type-only ones included)
is resolved with `ast`, without importing anything, and checked against the table below:
a lower layer never imports a higher one.
"""

import ast
from pathlib import Path

import planarpy

ROOT = Path(planarpy.__file__).parent

EVERYTHING = None
# layer -> the layers it may import (besides its own)
ALLOWED = {
    "core": set(),
    "integrity": set(),  # checksums and atomic metadata of the Zarr stores
    "config": {"core"},  # reading user/planar.toml
    "validate": {"core"},  # checking config and command-line values
    "params": {"core"},  # strategy parameters
    "actions": {"core", "params"},  # the `call` vocabulary, the pipeline, the Strategy base
    "indicators": {"core"},
    "exchanges": {"core", "config", "validate"},
    "data": {"core", "exchanges", "config", "integrity"},
    "trace": {"core", "integrity", "config", "data", "loader", "params"},  # replay by name
    "loader": {"core", "config", "actions"},
    "modes.sim": {"core", "actions", "data", "config", "params"},
    "modes.runtime": {"core", "actions", "data", "exchanges", "config", "loader", "params",
                      "validate", "modes.sim"},  # the shadow backtest beside a run
    "modes.paper": {"core", "actions", "data", "exchanges", "trace", "config", "loader",
                    "params", "validate", "modes.runtime", "modes.sim"},
    "modes.live": {"core", "actions", "data", "exchanges", "trace", "config", "loader",
                   "params", "validate", "modes.runtime"},
    "localexchange": {"core", "data"},  # never live-mode code
    "plot": {"core", "data", "modes.sim"},
    "charts": {"core", "actions", "data", "config", "loader", "params", "trace", "plot",
               "modes.sim"},
    "optimize": {"core", "actions", "data", "config", "loader", "params", "modes.sim",
                 "charts"},
    "cli": EVERYTHING,
    "planarpy": EVERYTHING,  # the package's facade: re-exports
    "modes": set(),
}
ALIASES = {"strategy": "actions"}  # README: `actions.py, strategy.py` are one layer


def layer(module: str) -> str:
    """The layer of a planarpy module name ('planarpy.modes.sim.run' -> 'modes.sim')."""
    parts = module.split(".")[1:]
    if not parts:
        return "planarpy"
    if parts[0] == "modes" and len(parts) > 1:
        return f"modes.{parts[1]}"
    return ALIASES.get(parts[0], parts[0])


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every planarpy import in one file."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out += [(node.lineno, target)] if node.module else \
                [(node.lineno, f"{target}.{a.name}") for a in node.names]
    top = root.name
    return [(line, m) for line, m in out if m == top or m.startswith(top + ".")]


def violations(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        src = module_name(path, root)
        mine = layer(src)
        if mine not in ALLOWED:
            found.append(f"{path.relative_to(root.parent)}: layer {mine!r} is not in the table")
            continue
        allowed = ALLOWED[mine]
        for line, target in imports(path, root):
            theirs = layer(target)
            if allowed is EVERYTHING or theirs == mine or theirs in allowed:
                continue
            found.append(f"{path.relative_to(root.parent)}:{line} imports {target} "
                         f"(layer {theirs}); {mine} may import only "
                         f"{', '.join(sorted(allowed)) or 'nothing of planarpy'}")
    return found


def test_no_import_breaks_the_layers():
    """Every import of the package respects the layer table."""
    assert violations(ROOT) == []


def test_the_checker_finds_a_violation(tmp_path):
    """The checker sees relative, absolute and nested imports (it is not vacuous)."""
    pkg = tmp_path / "planarpy"
    (pkg / "core").mkdir(parents=True)
    (pkg / "modes" / "sim").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "x.py").write_text("def f():\n    from ..actions import call\n")
    (pkg / "modes" / "sim" / "y.py").write_text("import planarpy.trace.store\n"
                                                 "from ... import core\n")
    found = violations(pkg)
    assert len(found) == 2, found
    assert "planarpy/core/x.py:2 imports planarpy.actions (layer actions); core may import " \
           "only nothing of planarpy" in found[0]
    assert "planarpy/modes/sim/y.py:1 imports planarpy.trace.store (layer trace)" in found[1]
