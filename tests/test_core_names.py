"""The core (``harness/``) never names a service: it asks ``mocks.registry``. A service name as a
string constant anywhere under ``harness/`` (docstrings aside) fails here with its file and line."""

import ast
from pathlib import Path

from mocks.registry import SERVICES

CORE = Path(__file__).resolve().parent.parent / "harness"


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def service_names_in(path: Path, names: set[str], root: Path = CORE.parent) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docs = _docstrings(tree)
    return [f"{path.relative_to(root)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
            and id(node) not in docs]


def test_the_check_finds_a_service_literal(tmp_path):
    sample = tmp_path / "harness" / "sample.py"
    sample.parent.mkdir()
    sample.write_text('"""solver docstring"""\nSOURCES = ("solver", "redis")\n\n\ndef f():\n'
                      '    """chat"""\n    return f"{1}chat" + "chat"\n')
    assert service_names_in(sample, {"solver", "chat"}, tmp_path) == [  # docstrings no, an f-string part yes
        "harness/sample.py:2: 'solver'", "harness/sample.py:7: 'chat'", "harness/sample.py:7: 'chat'"]


def test_no_service_name_in_the_core():
    names = set(SERVICES)
    assert {"captcha", "solver", "chat"} <= names
    hits = [hit for path in sorted(CORE.rglob("*.py")) for hit in service_names_in(path, names)]
    assert not hits, "the core names a service (ask mocks.registry instead):\n" + "\n".join(hits)
