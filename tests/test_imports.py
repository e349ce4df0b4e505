"""The packages of reface_tf import each other in one direction only (see docs/architecture.md, "Package layers").

Every module is read with ``ast`` (nothing is imported): top-level and function-level imports, ``import x`` and
``from x import y``, relative imports resolved. A node of the graph is the first component under ``reface_tf``:
a package (``reface_tf.eval``) or a top-level module (``reface_tf/config.py`` is ``config``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import reface_tf

ROOT = Path(reface_tf.__file__).resolve().parent

# Lowest first. A package may import its own layer and the layers below it, never one above; within a layer the
# graph must still be acyclic. A name that is not (yet) a package or module of reface_tf is skipped.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "config", "registry", "cli"),
    ("data", "faces", "synth"),
    ("samples", "metrics", "provenance"),  # samples builds the demo data from data/faces/synth; metrics crops faces with
    # faces.align; provenance fingerprints a split with data.pairs
    ("models", "losses"),
    ("train",),
    ("serve",),
    ("tasks",),
    ("eval", "tune", "app"),  # app: the web page over the exports (serve, synth, faces)
    ("commands",),
]

Edge = tuple[str, str]
Where = dict[Edge, list[str]]  # "reface_tf/data/default.py:17 imports reface_tf.samples"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth; ``from m import n`` gives
    ``m.n`` (n may be a submodule; a name inside ``m`` resolves to the same node anyway)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found += [(node.lineno, f"{module}.{alias.name}" if alias.name != "*" else module) for alias in node.names]
    return found


def node_of(module: str) -> str | None:
    """``reface_tf.eval.report`` -> ``eval``; None for the root package and for other libraries."""
    parts = module.split(".")
    if parts[0] != ROOT.name or len(parts) < 2:
        return None
    return parts[1]


def package_graph(root: Path = ROOT) -> tuple[set[str], Where]:
    nodes: set[str] = set()
    where: Where = {}
    for path in sorted(root.rglob("*.py")):
        source = node_of(module_name(path, root))
        if source is None:
            continue
        nodes.add(source)
        for line, module in imported_modules(path, root):
            target = node_of(module)
            if target is not None and target != source:
                where.setdefault((source, target), []).append(
                    f"{path.relative_to(root.parent)}:{line} imports {module}")
    return nodes, where


def find_cycle(nodes: set[str], edges: set[Edge]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    succ = {n: sorted(b for a, b in edges if a == n) for n in nodes}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in succ.get(n, []):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        path.pop()
        state[n] = 2
        return None

    for n in sorted(nodes):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def cycles(nodes: set[str], edges: set[Edge]) -> list[tuple[list[str], list[str]]]:
    """(members, one cycle among them) of each group of mutually importing nodes (strongly connected component)."""
    reach = {n: {n} for n in nodes}
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            if not reach[b] <= reach[a]:
                reach[a] |= reach[b]
                changed = True
    groups = {frozenset(m for m in reach[n] if n in reach[m]) for n in nodes}
    return sorted((sorted(g), find_cycle(set(g), {(a, b) for a, b in edges if a in g and b in g}))
                  for g in groups if len(g) > 1)


def layer_violations(where: Where, layers: list[tuple[str, ...]] = LAYERS) -> list[str]:
    rank = {name: i for i, layer in enumerate(layers) for name in layer}
    return [f"{a} (layer {rank[a] + 1}) imports {b} (layer {rank[b] + 1}): {where[(a, b)][0]}"
            for a, b in sorted(where) if a in rank and b in rank and rank[a] < rank[b]]


def _describe_cycle(members: list[str], cycle: list[str], where: Where) -> str:
    return (f"{{{', '.join(members)}}}, e.g. " + " -> ".join(cycle)
            + "".join(f"\n  {where[(a, b)][0]}" for a, b in zip(cycle, cycle[1:])))


def test_the_parser_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / "reface_tf"
    (pkg / "eval").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "eval" / "__init__.py").write_text("from . import report\n")
    (pkg / "eval" / "report.py").write_text(
        "import numpy\nimport reface_tf.config\nfrom ..data import pairs\nfrom reface_tf import samples\n"
        "def f():\n    from reface_tf.train.loop import train\n    from .evaluate import x\n")
    nodes, where = package_graph(pkg)
    assert nodes == {"eval"}
    assert set(where) == {("eval", "config"), ("eval", "data"), ("eval", "samples"), ("eval", "train")}
    assert where[("eval", "train")] == ["reface_tf/eval/report.py:6 imports reface_tf.train.loop.train"]
    assert find_cycle({"a", "b", "c"}, {("a", "b"), ("b", "c"), ("c", "a")}) == ["a", "b", "c", "a"]
    assert find_cycle({"a", "b", "c"}, {("a", "b"), ("b", "c"), ("a", "c")}) is None
    assert cycles({"a", "b", "c", "d"}, {("a", "b"), ("b", "a"), ("b", "c"), ("c", "d"), ("d", "c")}) == [
        (["a", "b"], ["a", "b", "a"]), (["c", "d"], ["c", "d", "c"])]
    assert layer_violations({("errors", "eval"): ["x.py:1 imports reface_tf.eval"]}) == [
        "errors (layer 1) imports eval (layer 8): x.py:1 imports reface_tf.eval"]


def test_every_package_has_a_layer():
    nodes, _ = package_graph()
    placed = {name for layer in LAYERS for name in layer}
    assert nodes <= placed, f"add {sorted(nodes - placed)} to LAYERS here and to docs/architecture.md"


def test_no_import_cycle_between_packages():
    nodes, where = package_graph()
    found = cycles(nodes, set(where))
    assert not found, "import cycles:\n" + "\n".join(_describe_cycle(*c, where) for c in found)


def test_lower_layers_never_import_higher_ones():
    _, where = package_graph()
    violations = layer_violations(where)
    assert not violations, "\n".join(violations)
