"""Every table of names exists once, in ``protocol/vocabulary.py``: the rule run over the whole tree (protocol,
plugin core, server, both plugins).

A tuple, list or set of two or more vocabulary names, or a dict keyed by two or more of them whose values are
plain literals (facts about the names: they belong in the name's row), re-declares a table. A dict keyed by
names whose values are computed (frames of a job by role, one handler per kind) is data or a registry and
passes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("protocol", "server", "plugin_krita", "plugin_gimp")
SOURCES = sorted(p for tree in TREES for p in (ROOT / tree).rglob("*.py") if p != ROOT / "protocol/vocabulary.py")
# Tables the engine's rewrite onto a model-family table removes (another branch); each entry must still find its
# table, so the list can only shrink: delete an entry when its module is fixed.
OPEN = {
    "server/engine/interface.py": "PIPELINES names the engine's pipelines with kind names",
    "server/engine/samplers.py": "scheduler classes per sampler and step limits per sampler",
}


def _vocabulary_names() -> set[str]:
    from underpaint.protocol import vocabulary as v

    return set(v.KINDS) | set(v.ROLES) | set(v.PIXEL_FORMATS) | set(v.ENCODINGS) | set(v.SAMPLERS)


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def tables(path: Path) -> list[str]:
    """``line: names`` of each table of vocabulary names ``path`` declares."""
    names, found = _vocabulary_names(), []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Dict):
            if not all(_literal(v) for v in node.values):
                continue
            items = node.keys
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        else:
            continue
        strings = [n.value for n in items if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        if len(strings) >= 2 and set(strings) <= names:
            found.append(f"{node.lineno}: {strings}")
    return found


def test_the_rule_finds_a_table(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('KINDS = ("img2img", "inpaint")\nMODES = {"rgba8": "RGBA", "gray8": "L"}\n'
                      'INPUTS = {"image": make(), "mask": make()}\n', encoding="utf-8")
    assert [t.split(":")[0] for t in tables(sample)] == ["1", "2"]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_but_the_vocabulary_declares_a_table_of_names(path: Path) -> None:
    name = str(path.relative_to(ROOT))
    found = tables(path)
    if name in OPEN:
        assert found, f"{name} no longer declares a table: remove it from OPEN"
        return
    assert not found, f"{name} declares {found}"
