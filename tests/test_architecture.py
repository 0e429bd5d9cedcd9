"""The package's shape: its layers import only the layers below them, comm/ is MPI alone, no algorithm
name is written outside the registry, and checking a config does not start MPI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

from mpidrl import registry

PACKAGE = ROOT / "mpidrl"

LAYERS = [
    ["mpidrl.comm", "mpidrl.rng", "mpidrl.records", "mpidrl.log", "mpidrl.signals", "mpidrl.version"],
    ["mpidrl.config", "mpidrl.registry"],
    ["mpidrl.timing", "mpidrl.network", "mpidrl.theory"],
    ["mpidrl.envs"],
    ["mpidrl.policies"],
    ["mpidrl.protocols"],
    ["mpidrl.algorithms"],
    ["mpidrl.store"],
    ["mpidrl.analysis"],
    ["mpidrl.figures"],
    [
        "mpidrl.report",
        "mpidrl.validate",
        "mpidrl.run",
        "mpidrl.sweep",
        "mpidrl.api",
        "mpidrl.launcher",
        "mpidrl.evaluate",
    ],
    ["mpidrl.cli", "mpidrl.__main__"],
]
"""Each module may import its own layer and the layers above it in this list (README, "Layers")."""


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(name: str, path: Path, known: set[str], top_only: bool = False) -> set[str]:
    """The mpidrl modules and the other top-level packages a module imports (anywhere in it, or with
    ``top_only`` in its top-level statements)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    tree = ast.parse(path.read_text())
    for node in tree.body if top_only else ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def layer(module: str) -> int:
    for index, group in enumerate(LAYERS):
        if any(module == g or module.startswith(g + ".") for g in group):
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS")


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


def test_every_module_imports_only_its_layer_and_those_below():
    wrong = []
    for name, deps in GRAPH.items():
        if name == "mpidrl":
            continue  # the package's own namespace (version, the lazy Python API) may name anything
        for dep in deps:
            if dep.startswith("mpidrl.") and dep in GRAPH and layer(dep) > layer(name):
                wrong.append(f"{name} (layer {layer(name)}) imports {dep} (layer {layer(dep)})")
    assert not wrong, "\n".join(wrong)


def test_comm_alone_imports_mpi4py_and_imports_nothing_else_of_mpidrl():
    for name, deps in GRAPH.items():
        if any(d == "mpi4py" or d.startswith("mpi4py.") for d in deps):
            assert name.startswith("mpidrl.comm"), f"{name} imports mpi4py"
        if name.startswith("mpidrl.comm"):
            outside = {d for d in deps if d.startswith("mpidrl") and not d.startswith("mpidrl.comm")}
            assert not outside, f"{name} imports {outside}"


def test_no_import_circles():
    # the package's own namespace imports its lazy Python API (mpidrl.run, mpidrl.api, mpidrl.register) on
    # first use, after every module is loaded: only what it imports at the top of the file can close a circle
    graph = {**GRAPH, "mpidrl": imports("mpidrl", PACKAGE / "__init__.py", set(GRAPH), top_only=True)}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for dep in graph.get(todo.pop(), ()):
                if dep == goal:
                    return True
                if dep in GRAPH and dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return False

    circles = {
        tuple(sorted((a, b)))
        for a, deps in GRAPH.items()
        for b in deps
        if b in GRAPH and b != a and not (a.startswith(b + ".") or b.startswith(a + ".")) and reaches(b, a)
    }
    assert not circles, circles


def test_algorithm_names_are_written_only_in_the_registry():
    """No module compares a config's algorithm to a name: what differs between algorithms is in their specs."""
    names = set(registry.BUILTINS)
    found = []
    for name, path in modules().items():
        if name == "mpidrl.registry":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not found, "\n".join(found)


def test_checking_a_config_does_not_start_mpi(tmp_path):
    script = (
        "import sys\n"
        "from mpidrl import validate\n"
        "validate.load_checked(None, ['algo.name=\"rennala-nigt\"', 'time.mode=\"simulated\"'])\n"
        "validate.load_checked(None, ['env.id=\"mpidrl/SimpleGrid-v0\"', 'algo.name=\"dql\"'])\n"
        "print('mpi4py.MPI' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"


def test_the_readme_layout_names_every_module():
    """README's Layout section is where a newcomer looks first: every module of the package is named there."""
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    modules = [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"]
    missing = [str(p.relative_to(PACKAGE)) for p in modules if p.name not in layout]
    assert not missing, f"README.md, Layout: not named: {missing}"
