"""The import graph of the shipped code (protocol, server, both plugins), read from the source with ``ast``.

Every import counts: at the top, inside a function, under ``TYPE_CHECKING``. Installed names
(``underpaint.protocol``, ``underpaint.server``, ``underpaint.plugin_*``; ``underpaint_protocol`` as the plugins
bundle it) and relative imports are mapped back to files. Rules: no cycles; the transport never imports the
engine (it gets ready objects from ``cli.compose``) nor pixel libraries (``imaging`` does that work); ``scale``
never imports ``cli``; no module imports another module's private (``_name``) names.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("protocol", "server", "plugin_krita", "plugin_gimp")
INSTALLED = {"underpaint.protocol": "protocol", "underpaint_protocol": "protocol", "underpaint.server": "server",
             "underpaint.plugin_krita": "plugin_krita", "underpaint.plugin_gimp": "plugin_gimp"}


@dataclass(frozen=True)
class Import:
    target: str  # the module (dotted, relative to the repository root) the import loads
    names: tuple[str, ...]  # the names taken from it (``from x import a, b``); () for ``import x``
    line: int


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(root: Path) -> dict[str, Path]:
    """Module name -> file, for the shipped packages (vendored third-party code aside)."""
    return {module_name(root, path): path for package in PACKAGES if (root / package).is_dir()
            for path in sorted((root / package).rglob("*.py")) if "vendor" not in path.parts}


def unalias(name: str) -> str:
    """An installed name (``underpaint.server.jobs``) as the repository's module name (``server.jobs``)."""
    for installed, folder in INSTALLED.items():
        if name == installed or name.startswith(installed + "."):
            return folder + name[len(installed):]
    return name


def imports(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import in ``path`` that loads a module of the repository, wherever in the file it is."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [Import(unalias(alias.name), (), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = unalias(node.module or "")
            for alias in node.names:
                sub = f"{source}.{alias.name}"  # ``from pkg import module`` loads that module
                out.append(Import(sub, (), node.lineno) if sub in modules else
                           Import(source, (alias.name,), node.lineno))
    return [i for i in out if nearest(i.target, modules)]


def nearest(name: str, modules: dict[str, Path]) -> str | None:
    """The repository module an import loads (``server.engine.interface.Engine`` -> ``server.engine.interface``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def graph(root: Path) -> dict[str, set[str]]:
    modules = source_files(root)
    edges: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {nearest(i.target, modules) for i in imports(module, path, modules)}
        edges[module] = {t for t in targets if t is not None and t != module}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph is small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [path_through(group, edges) for group in groups]


def path_through(group: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest way from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        after = []
        for node in frontier:
            for nxt in sorted(edges[node] & group):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    after.append(nxt)
        frontier = after
    raise AssertionError(f"no cycle through {sorted(group)}")


def importers(prefix: str, forbidden: str) -> list[str]:
    modules = source_files(ROOT)
    found = []
    for module, path in modules.items():
        if module == prefix or module.startswith(prefix + "."):
            for i in imports(module, path, modules):
                target = nearest(i.target, modules) or ""
                if target == forbidden or target.startswith(forbidden + "."):
                    found.append(f"{path.relative_to(ROOT)}:{i.line} imports {target}")
    return sorted(set(found))


# ----------------------------------------------------------------------------- the rules
def test_no_import_cycles():
    found = cycles(graph(ROOT))
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_transport_never_imports_the_engine():
    """The composition root (server/cli/compose.py) builds engine, jobs and upscalers; the transport gets them."""
    assert importers("server.transport", "server.engine") == []


def test_the_transport_never_touches_pixels():
    """REST hands decoding, pasting and PNG encoding to server/imaging: no numpy, PIL or torch in the transport."""
    found = []
    for path in sorted((ROOT / "server" / "transport").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[0] in ("numpy", "PIL", "torch", "diffusers")]
    assert found == []


def test_scale_never_imports_the_cli():
    assert importers("server.scale", "server.cli") == []


def test_no_module_imports_a_private_name_of_another():
    modules = source_files(ROOT)
    found = [f"{path.relative_to(ROOT)}:{i.line} takes {name} from {i.target}"
             for module, path in modules.items() for i in imports(module, path, modules)
             for name in i.names if name.startswith("_") and not name.startswith("__")]
    assert found == []


# ----------------------------------------------------------------------------- the reader itself
def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cycle_through_a_function_level_import_under_an_installed_name_is_found(tmp_path: Path):
    root = write(tmp_path, {
        "server/__init__.py": "",
        "server/engine/__init__.py": "",
        "server/engine/a.py": "from .b import thing\n",
        "server/engine/b.py": "def thing():\n    from underpaint.server.engine import a\n    return a\n",
        "server/engine/c.py": "from . import a\n",  # imports into the cycle without being part of it
    })
    assert cycles(graph(root)) == [["server.engine.a", "server.engine.b", "server.engine.a"]]


@pytest.mark.parametrize("text", [
    "from ..engine import interface\n",
    "from underpaint.server.engine.interface import Engine\n",
    "def late():\n    import underpaint.server.engine.interface\n",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..engine.interface import Engine\n",
])
def test_every_form_of_import_is_seen(tmp_path: Path, text: str):
    root = write(tmp_path, {"server/__init__.py": "", "server/engine/__init__.py": "",
                            "server/engine/interface.py": "Engine = object\n",
                            "server/transport/__init__.py": "", "server/transport/app.py": text})
    assert graph(root)["server.transport.app"] == {"server.engine.interface"}


def test_private_names_are_seen(tmp_path: Path):
    root = write(tmp_path, {"protocol/__init__.py": "", "protocol/a.py": "_f = 1\n",
                            "protocol/b.py": "from .a import _f\n"})
    modules = source_files(root)
    assert [i.names for i in imports("protocol.b", modules["protocol.b"], modules)] == [("_f",)]
