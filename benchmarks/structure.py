"""The code's shape: lines per module, the longest functions, function-local imports of the project's own
modules, the package import graph and the file-level import cycles.

    python -m benchmarks.structure            # one JSON line
    python -m benchmarks.structure --text     # the same, for reading

Run it before and after a restructuring to compare; it reads the source and imports nothing of it.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "demo", "pipeline", "prompts", "runtime")  # the floors, top down


def _modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES[1:]:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else ():
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _own(name: str | None) -> bool:
    return bool(name) and name.split(".")[0] in PACKAGES


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for each import of the project's own modules."""
    found = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, local) for alias in child.names if _own(alias.name))
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and _own(child.module):
                found.append((child.module, local))
            visit(child, inner)

    visit(tree, False)
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, groups = {}, {}, [], set(), []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return groups


def measure() -> dict:
    modules = _modules()
    lines, functions, local_imports = {}, [], 0
    file_edges: dict[str, set[str]] = {m: set() for m in modules}
    package_edges: dict[str, set[str]] = {}
    upward: set[str] = set()  # imports of a higher floor from a lower one
    for name, path in modules.items():
        text = path.read_text()
        tree = ast.parse(text)
        lines[name] = len(text.splitlines())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                params = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
                params = [p for p in params if p not in ("self", "cls")]
                params += ["*" + node.args.vararg.arg] if node.args.vararg else []
                params += ["**" + node.args.kwarg.arg] if node.args.kwarg else []
                functions.append((node.end_lineno - node.lineno + 1, len(params), f"{name}.{node.name}"))
        for target, local in _imports(tree):
            local_imports += local
            resolved = _resolve(target, modules)
            if resolved and resolved != name:
                file_edges[name].add(resolved)
                src, dst = name.split(".")[0], resolved.split(".")[0]
                if src != dst:
                    package_edges.setdefault(src, set()).add(dst)
                if PACKAGES.index(dst) < PACKAGES.index(src):
                    upward.add(f"{name} -> {resolved}")
    functions.sort(reverse=True)
    return {
        "modules": len(modules),
        "lines": sum(lines.values()),
        "largest_modules": sorted(lines.items(), key=lambda kv: -kv[1])[:10],
        "longest_functions": [f"{n} ({lines_} lines, {p} params)" for lines_, p, n in functions[:10]],
        "functions_over_6_params": sorted(n for _, p, n in functions if p > 6),
        "local_project_imports": local_imports,
        "package_graph": {k: sorted(v) for k, v in sorted(package_edges.items())},
        "upward_imports": sorted(upward),
        "file_cycles": _cycles(file_edges),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.structure")
    parser.add_argument("--text", action="store_true", help="indented JSON for reading")
    args = parser.parse_args(argv)
    print(json.dumps(measure(), indent=2 if args.text else None))


if __name__ == "__main__":
    main()
