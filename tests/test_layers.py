"""The package's layering, read from its own import statements: a module imports only from its own
layer or the layers below it, and no two parts import each other (not even through a third).

The layers, from the ground up (docs/design-notes.md says why each sits where it does):"""

from __future__ import annotations

import ast
from pathlib import Path

import llmrelay

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "redaction", "version", "content", "calls"),  # nothing of ours but each other (no loops):
                                        # the errors, message parts (content), one provider call (calls)
    ("types",),                         # the vocabulary every layer speaks
    ("providers",),                     # adapters: wire formats in, unified types out; they declare themselves
    ("config", "catalog", "agents"),    # settings, model facts, agents: read the providers' declarations
    ("db",),                            # tables, engines, stores
    ("ledger",),                        # recording, pricing, statistics
    ("routing",),                       # targets, guards, chains, the fallback executor, the breaker
    ("testing",),                       # the fake providers
    ("relay",),                         # the one service object and its pipeline
    ("access",),                        # who is calling: API keys, web sessions
    ("web",),                           # the pages
    ("api",),                           # the HTTP service (it installs the pages)
    ("cli",),                           # the command line
    ("__init__", "__main__"),           # the package's face and entry point
)
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}
PACKAGE = Path(llmrelay.__file__).parent


def part_of(module: str) -> str:
    """`llmrelay.routing.targets` -> `routing`; `llmrelay` itself, or a name its face defines
    (`llmrelay.__version__`), -> `__init__`."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    here = PACKAGE / parts[1]
    return parts[1] if here.is_dir() or here.with_suffix(".py").is_file() else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every llmrelay module `path` imports, wherever the import stands (functions, TYPE_CHECKING too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "llmrelay")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] == "llmrelay":
                if target != "llmrelay":  # `from llmrelay import x`: what it takes is x (below)
                    found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)  # `from . import x` names modules too
    return found


def edges() -> dict[str, dict[str, list[str]]]:
    """part -> part it imports -> the modules that import it that way."""
    out: dict[str, dict[str, list[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:  # Alembic's scripts: loaded by Alembic, not imported
            continue
        source = module_name(path)
        for target in imports_of(path):
            a, b = part_of(source), part_of(target)
            if a != b and b in RANK:
                out.setdefault(a, {}).setdefault(b, []).append(source)
    return out


def test_every_part_has_a_layer():
    parts = {part_of(module_name(p)) for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    assert parts <= set(RANK), f"parts without a layer: {sorted(parts - set(RANK))}"


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    upward = [f"{', '.join(sorted(set(mods)))} ({a}, layer {RANK[a]}) imports {b} (layer {RANK[b]})"
              for a, targets in edges().items() for b, mods in targets.items() if RANK[b] > RANK[a]]
    assert upward == []


def test_no_parts_import_each_other():
    graph = {a: set(targets) for a, targets in edges().items()}
    loops = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in graph.get(node, ()):
            if nxt == path[0]:
                loops.append(" -> ".join([*path, nxt]))
            elif nxt not in path and RANK[nxt] == RANK[path[0]]:  # a loop must stay within one layer
                visit(nxt, [*path, nxt])

    for start in graph:
        visit(start, [start])
    assert loops == []


def test_the_reader_sees_imports_that_are_there():
    """The check reads real imports: a known downward one and a relative `from . import` are found."""
    found = edges()
    assert "routing" in found["relay"] and "types" in found["routing"]
    assert "llmrelay.cli.chat" in imports_of(PACKAGE / "cli" / "__init__.py")
