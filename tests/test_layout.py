"""The package's shape, checked: ruff, the import-linter contracts in pyproject.toml (layers, no cycles),
and bounded module and function sizes."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lora_iqa"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


def _tool(name: str) -> str:
    """The console script of a test dependency, beside this Python (a venv) or on PATH."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it is in the 'test' extra)")
    return found


def test_ruff_passes():
    proc = subprocess.run([_tool("ruff"), "check", "lora_iqa", "tests", "benchmarks", "recipes"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_contracts_are_kept():
    proc = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert "0 broken" in proc.stdout and proc.stdout.count("KEPT") == 3


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "resources" not in p.parts)


def long_functions(source: str, limit: int) -> list[tuple[str, int]]:
    """(name, lines) of every function or method in ``source`` longer than ``limit`` lines."""
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit]


def test_no_module_over_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_the_line_limit():
    long = {f"{p.relative_to(ROOT)}:{name}": n for p in _modules() for name, n in long_functions(p.read_text(), MAX_FUNCTION_LINES)}
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_function_counter_counts():
    body = "\n".join(f"    x{i} = {i}" for i in range(90))
    assert long_functions(f"def big():\n{body}\n\ndef small():\n    return 1\n", MAX_FUNCTION_LINES) == [("big", 91)]


def test_benchmarks_are_scripts_configs_results():
    """benchmarks/ holds scripts/, configs/, results/ and its README; no script is named like a module of
    the package (a script protocols.py would read as lora_iqa/protocols/)."""
    bench = ROOT / "benchmarks"
    top = {p.name for p in bench.iterdir() if not p.name.startswith((".", "__"))}
    assert top <= {"README.md", "scripts", "configs", "results"}, top
    modules = {p.stem for p in PACKAGE.rglob("*.py")} | {p.name for p in PACKAGE.rglob("*") if p.is_dir()}
    scripts = {p.stem for p in (bench / "scripts").glob("*.py")}
    assert scripts and not scripts & modules, scripts & modules
