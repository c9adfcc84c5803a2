"""The package's import graph: every module imports on its own, and no two modules import each
other, directly or around a loop (function-level imports included)."""

from __future__ import annotations

import ast
import configparser
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> the package it installs as (setup.cfg's package_dir)
FOLDERS = {"iis_pipe": "iis_pipe", "cli": "iis_pipe.cli", "pipelines": "iis_pipe.pipelines"}


def project_modules() -> dict[str, Path]:
    """Installed name -> source file of every module (``__main__`` scripts left out)."""
    out = {}
    for folder, package in FOLDERS.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            if path.name == "__main__.py":
                continue
            parts = path.relative_to(base).with_suffix("").parts
            if folder == "iis_pipe" and parts[0] in ("cli", "pipelines"):
                continue  # not folders of iis_pipe/, only mapped names
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((package, *parts))] = path
    return out


def imported_names(path: Path, module: str) -> list[str]:
    """Absolute names of everything ``path`` imports, anywhere in it (module level, function
    bodies, ``if TYPE_CHECKING`` blocks); ``from a import b`` gives ``a.b``."""
    is_package = path.name == "__init__.py"
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            stem = node.module
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                stem = ".".join(base + ([node.module] if node.module else []))
            names += [f"{stem}.{a.name}" for a in node.names]
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports: the longest project module that each
    imported name starts with (``from pkg import sub`` is an edge to ``pkg.sub`` when that is
    a module, else to ``pkg``)."""
    modules = project_modules()
    graph = {}
    for module, path in modules.items():
        edges = set()
        for name in imported_names(path, module):
            parts = name.split(".")
            found = [".".join(parts[:n]) for n in range(len(parts), 0, -1)
                     if ".".join(parts[:n]) in modules]
            if found:
                edges.add(found[0])
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and self-imports."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_circular_imports():
    graph = import_graph()
    assert "iis_pipe.cli.main" in graph and "iis_pipe.stream.loader" in graph
    assert "iis_pipe.cli.data" in graph["iis_pipe.cli.main"]  # edges are seen at all
    assert "iis_pipe.stream.augment" in graph["iis_pipe.stream.loader"]
    assert cycles(graph) == []


def test_nothing_imports_the_old_top_level_names():
    """``cli`` and ``pipelines`` install inside ``iis_pipe``; a stray ``import cli`` would only
    work from the repository root."""
    files = [*project_modules().values(), *ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py"),
             ROOT / "cli" / "__main__.py"]
    stray = [f"{p.relative_to(ROOT)}: {name}" for p in files
             for name in imported_names(p, "x")
             if name.split(".")[0] in ("cli", "pipelines")]
    assert stray == []


def test_setup_cfg_lists_every_package():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    on_disk = {m for m, p in project_modules().items() if p.name == "__init__.py"}
    assert listed == on_disk
    mapped = dict(line.split(" = ") for line in cfg["options"]["package_dir"].strip().splitlines())
    assert mapped == {pkg: folder for folder, pkg in FOLDERS.items() if folder != pkg}


# One fresh interpreter loads the third-party libraries the project imports (a second or more
# each: torch, numba, timm...), then forks one child per module, two at a time; each child
# starts with no project module loaded and imports its one module, as `python -c "import M"`
# would (what only a fresh interpreter shows, a partly initialised module of a cycle, shows
# here: the project's modules are fresh in every child).
_CHILD_RUNNER = textwrap.dedent("""
    import importlib, json, os, sys, traceback
    modules, preload = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:
            pass  # the child's own import will say what is wrong
    loaded = [m for m in sys.modules if m == "iis_pipe" or m.startswith("iis_pipe.")]
    assert not loaded, loaded
    failed, running = {}, {}

    def reap():
        pid, status = os.wait()
        if os.waitstatus_to_exitcode(status) != 0:
            failed[running[pid]] = os.waitstatus_to_exitcode(status)
        del running[pid]

    for name in modules:
        if len(running) >= 2:
            reap()
        pid = os.fork()
        if pid == 0:
            try:
                importlib.import_module(name)
            except BaseException:
                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        running[pid] = name
    while running:
        reap()
    print(json.dumps(failed))
""")


def _third_party(modules: dict[str, Path]) -> list[str]:
    names = {n.split(".")[0] for m, p in modules.items() for n in imported_names(p, m)}
    return sorted(n for n in names if n and n != "iis_pipe" and n not in sys.builtin_module_names)


@pytest.mark.slow
def test_every_module_imports_alone():
    modules = project_modules()
    assert len(modules) > 60 and "iis_pipe.cli.data" in modules
    r = subprocess.run([sys.executable, "-c", _CHILD_RUNNER, json.dumps(sorted(modules)),
                        json.dumps(_third_party(modules))], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {}, r.stderr[-4000:]
