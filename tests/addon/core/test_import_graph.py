"""The add-on's Blender modules import one another without a cycle, counting the imports inside
functions too (an import hidden in a function is how a cycle used to get round Python), and
none of them imports the public API module (api.py uses them, not the other way round).

The graph is read from the source with `ast`, so bpy is not needed. The same rules, and core/
never importing bpy, are import-linter contracts in pyproject.toml, run here too."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import glimpse_syncdreamer_addon

ADDON_CONTRACTS = ("addon-core-no-bpy", "addon-blender-acyclic")

ADDON = Path(glimpse_syncdreamer_addon.__file__).resolve().parent
BLENDER = ADDON / "blender"


def _imported_modules(node, package: str) -> set:
    """Full names of the modules an Import/ImportFrom node (in module package.X) reaches."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if node.level:
        base = package.split(".")
        base = base[:len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    # `from . import runtime` names a module; `from .settings import x` names the module settings
    return {prefix} | {f"{prefix}.{alias.name}" for alias in node.names}


def blender_graph() -> dict:
    """(module name -> the blender/ modules it imports anywhere in its source, module name -> every
    module it imports)."""
    package = "glimpse_syncdreamer_addon.blender"
    modules = {f"{package}.{path.stem}": path for path in BLENDER.glob("*.py") if path.stem != "__init__"}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        reached = set()
        for node in ast.walk(tree):  # every import, at the top or inside a function
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                reached |= _imported_modules(node, package)
        graph[name] = reached
    return {name: sorted(reached & set(modules)) for name, reached in graph.items()}, graph


def find_cycle(graph: dict) -> list:
    """One cycle as [a, b, ..., a], or [] when the graph has none (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_find_cycle_sees_a_cycle_and_its_absence():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) == []


def test_the_reader_sees_imports_inside_functions(tmp_path):
    source = "def f():\n    from . import runtime\n    from .settings import server_settings\n"
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found |= _imported_modules(node, "pkg.blender")
    assert {"pkg.blender.runtime", "pkg.blender.settings"} <= found


def test_no_cycle_among_the_blender_modules():
    graph, _ = blender_graph()
    assert len(graph) >= 15, sorted(graph)  # the reader found the modules
    assert any(graph.values()), "the reader found no imports between blender/ modules"
    assert find_cycle(graph) == []


def test_no_blender_module_imports_the_public_api():
    _, reached = blender_graph()
    users = sorted(name for name, modules in reached.items() if "glimpse_syncdreamer_addon.api" in modules)
    assert users == []


def test_the_addon_import_contracts_hold(repo_root):
    lint_imports = Path(sys.executable).parent / "lint-imports"
    command = [str(lint_imports), "--no-cache"]
    for contract in ADDON_CONTRACTS:
        command += ["--contract", contract]
    # this checkout's packages, not the editable install's
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(ADDON_CONTRACTS)} kept, 0 broken." in result.stdout
