"""The import graph of the four packages, read from the source with `ast` (module-level imports and lazy ones
inside functions alike): no cycle between modules, and the layer rule of DESIGN.md §2.

    deploy -> workers -> services -> curriculum        (arrows run one way)

* `curriculum/` imports nothing of ours, and none of Ray, Redis or HTTP (ray, redis, httpx, fastapi, starlette);
* `services/` never imports `workers/` or `deploy/`;
* `workers/` touches `services/` only through its client modules (`services.client`, `services.incluster`) and
  `services.keys`, the module of shared names (Ray namespace, actor names, Redis key layout) that imports nothing;
* `deploy/` (the composition root) may import everything.

Files are discovered, not listed, so the test keeps up with modules that come and go.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("curriculum", "services", "workers", "deploy")
LAYER = {p: k for k, p in enumerate(PACKAGES)}  # an import may only point to a lower (or the same) layer
WORKERS_MAY_USE = {"services.client", "services.incluster", "services.keys"}
NO_IO_IN_CURRICULUM = {"ray", "redis", "httpx", "fastapi", "starlette"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def discover(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Every module of the packages (name -> file), found on disk."""
    return {module_name(root, p): p for pkg in packages if (root / pkg).is_dir()
            for p in sorted((root / pkg).rglob("*.py"))}


def imported_names(module: str, path: Path) -> list[tuple[str, int]]:
    """(absolute dotted name, line) of every import statement in the file, nested ones included. `from X import Y`
    gives `X.Y`: resolve() maps it to the module X.Y, or to X when Y is a name defined in X."""
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package that holds this module
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            out += [(f"{base}.{a.name}" if base else a.name, node.lineno) for a in node.names]
    return out


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that `name` refers to: itself, or its longest prefix that is a module."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in modules:
            return ".".join(parts[:k])
    return None


def import_graph(root: Path, packages=PACKAGES) -> tuple[dict[str, set[str]], dict[tuple[str, str], int]]:
    """module -> the modules of ours it imports (self-imports left out), and the line of each edge."""
    modules = discover(root, packages)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    lines: dict[tuple[str, str], int] = {}
    for m, path in modules.items():
        for name, line in imported_names(m, path):
            target = resolve(name, modules)
            if target is None or target == m:
                continue
            graph[m].add(target)
            lines.setdefault((m, target), line)
    return graph, lines


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def layer_violations(graph: dict[str, set[str]], lines: dict, root: Path) -> list[str]:
    bad = []
    for m, targets in sorted(graph.items()):
        src = m.split(".")[0]
        for t in sorted(targets):
            dst = t.split(".")[0]
            where = f"{m} -> {t} (line {lines[(m, t)]})"
            if LAYER[dst] > LAYER[src]:
                bad.append(f"{where}: {src}/ may not import {dst}/ (deploy -> workers -> services -> curriculum)")
            elif src == "workers" and dst == "services" and t not in WORKERS_MAY_USE:
                bad.append(f"{where}: workers/ touches services/ only through {sorted(WORKERS_MAY_USE)}")
    return bad


def third_party_in_curriculum(root: Path) -> list[str]:
    bad = []
    for m, path in discover(root, ("curriculum",)).items():
        for name, line in imported_names(m, path):
            if name.split(".")[0] in NO_IO_IN_CURRICULUM:
                bad.append(f"{m} imports {name} (line {line}): curriculum/ knows nothing of Ray, Redis or HTTP")
    return sorted(set(bad))


# -- the project -----------------------------------------------------------------------------------
def test_the_packages_are_found():
    modules = discover(REPO)
    assert {m.split(".")[0] for m in modules} == set(PACKAGES)
    assert "services.client" in modules and "services.incluster" in modules and "services.keys" in modules


def test_no_import_cycle():
    graph, lines = import_graph(REPO)
    found = cycles(graph)
    detail = [" <-> ".join(c) + ": " + ", ".join(f"{a}->{b}:{lines[(a, b)]}" for a in c for b in graph[a] if b in c)
              for c in found]
    assert not found, "import cycles:\n" + "\n".join(detail)


def test_layers():
    graph, lines = import_graph(REPO)
    assert layer_violations(graph, lines, REPO) == []


def test_curriculum_knows_nothing_of_ray_redis_or_http():
    assert third_party_in_curriculum(REPO) == []


def test_services_keys_imports_nothing_of_ours():
    """Every layer may import services.keys because it imports nothing of ours (no layer comes with it)."""
    graph, _ = import_graph(REPO)
    assert graph["services.keys"] == set()


def test_the_http_client_needs_neither_ray_nor_the_router():
    graph, _ = import_graph(REPO)
    reach, todo = set(), ["services.client"]
    while todo:
        for t in graph[todo.pop()] - reach:
            reach.add(t)
            todo.append(t)
    assert "services.router" not in reach and "services.owner" not in reach
    assert "services.client" not in {t for m in ("services.router", "services.owner") for t in graph[m]}


# -- the checker itself ----------------------------------------------------------------------------
def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@pytest.mark.parametrize("b_text", [
    "import curriculum.a\n",                                     # module level
    "def f():\n    from curriculum.a import x\n    return x\n",  # lazy, inside a function
    "def f():\n    from . import a\n    return a\n",             # relative
])
def test_a_cycle_is_found(tmp_path, b_text):
    root = write(tmp_path, {"curriculum/__init__.py": "", "curriculum/a.py": "from curriculum.b import f\nx = 1\n",
                            "curriculum/b.py": b_text})
    graph, _ = import_graph(root, ("curriculum",))
    assert cycles(graph) == [["curriculum.a", "curriculum.b"]]


def test_a_layer_violation_is_found(tmp_path):
    root = write(tmp_path, {f"{p}/__init__.py": "" for p in PACKAGES} | {
        "services/x.py": "def f():\n    import workers.y\n",
        "workers/y.py": "from services.keys import NAMESPACE\nfrom services.client import C\n",
        "workers/z.py": "from services import router\n",
        "services/keys.py": "", "services/client.py": "", "services/router.py": "",
        "curriculum/c.py": "def f():\n    import redis.asyncio\n"})
    graph, lines = import_graph(root)
    bad = layer_violations(graph, lines, root)
    assert (
        len(bad) == 2
        and bad[0].startswith("services.x -> workers.y")
        and bad[1].startswith("workers.z -> services.router")
    )
    assert third_party_in_curriculum(root) == ["curriculum.c imports redis.asyncio (line 2): curriculum/ knows nothing "
                                               "of Ray, Redis or HTTP"]
