"""protocol/ is bundled into the plugins: standard library only, Python 3.10 syntax, websockets only lazily."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
SOURCES = sorted(PROTOCOL.glob("*.py"))
THIRD_PARTY_ALLOWED = {"client.py": {"websockets"}}


def test_protocol_sources_exist():
    names = {p.name for p in SOURCES}
    assert {"__init__.py", "errors.py", "schema.py", "vocabulary.py", "messages.py", "frames.py", "pixels.py",
            "jobs.py", "connection.py", "server_connection.py", "client.py", "geometry.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_modules_stay_small(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400, path.name


def imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add((node.module or "").split(".")[0])
    return roots


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_imports_are_stdlib_or_relative(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    foreign = imported_roots(tree) - set(sys.stdlib_module_names) - {"__future__"}
    assert foreign <= THIRD_PARTY_ALLOWED.get(path.name, set()), f"{path.name} imports {sorted(foreign)}"


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_python_310_syntax(path):
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 10))


def test_websockets_is_imported_lazily_in_client():
    tree = ast.parse((PROTOCOL / "client.py").read_text(encoding="utf-8"))
    top_level = imported_roots(ast.Module(body=[n for n in tree.body], type_ignores=[]))
    module_level = {r for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                    for r in imported_roots(n)}
    assert "websockets" in top_level and "websockets" not in module_level


BLOCKED = """
import sys
sys.modules["websockets"] = None  # any import of websockets now raises ImportError
import underpaint.protocol as p
import underpaint.protocol.client as c
assert "websockets" not in [m for m in sys.modules if sys.modules[m] is not None and m.startswith("websockets")]
frame = p.make_frame("j1", "image", bytes(4), 1, 1, "rgba8")
assert p.decode_frame(frame.encode()) == frame
client = c.Client("localhost:1")
client.connect()
event = client.events.get(timeout=30)
assert isinstance(event, c.Disconnected) and event.error.code == "connection_failed", event
print("ok")
"""


def test_package_imports_without_websockets():
    out = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
