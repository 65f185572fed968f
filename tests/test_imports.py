"""The import structure of ``eno_hf``: data moves one way (``docs/architecture.md``).

Every import counts, the ones inside functions too (``grimp`` reads them all).

- Circles: a new import circle between modules of ``eno_hf`` fails; the circles that remain are
  listed in ``KNOWN_CIRCLES`` with why, and the test fails too when one of them is gone (so the
  list is kept true).
- Layers: ``LAYERS`` declares the parts of ``eno_hf`` (its sub-packages and top-level modules)
  from the top down; a part imports its own layer and the layers below it. An import that runs
  up a layer fails unless its line carries its reason as a comment (``noqa``/``type: ignore``
  alone is no reason), or it stands in ``KNOWN_UPWARD`` with its reason (imports in code whose
  comment is still to be written); a ``KNOWN_UPWARD`` entry that no longer runs up fails too.
"""

from __future__ import annotations

import re
import sys

import grimp

KNOWN_CIRCLES: dict[frozenset[str], str] = {}

LAYERS: list[tuple[str, ...]] = [
    ("cli", "init_cli", "flows"),  # entry points: the command line and the Prefect flows
    ("tagging", "clarity", "serving"),  # jobs and services built from everything below
    ("registry",),
    ("evaluation",),
    ("training",),
    ("inference",),
    ("performance",),
    ("workspace", "embeddings"),
    ("data", "__init__"),  # "__init__": eno_hf's own package module (offline defaults, auto-registration)
    ("features", "models", "metrics"),  # "metrics": tagging metrics on plain arrays (the head kinds name them)
    ("audio",),
    ("cli_common",),
    ("config", "jobs"),
    ("locations", "errors", "utils", "env"),  # the ground: imports nothing of eno_hf above it
]
"""The parts of ``eno_hf`` from the top layer down (``part()`` names a module's part)."""

KNOWN_UPWARD: dict[tuple[str, str], str] = {
}
"""Upward imports whose line does not carry its reason yet: ``(importer, imported)`` -> the reason."""

_NOT_A_REASON = re.compile(r"noqa(:\s*[A-Z]+\d+(\s*,\s*[A-Z]+\d+)*)?|type:\s*ignore(\[[^\]]*\])?|pragma:[^#]*")


def part(module: str) -> str:
    """The part of ``eno_hf`` a module belongs to: ``eno_hf.data.build`` -> ``data``, ``eno_hf`` -> ``__init__``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def reason_on_line(line: str) -> str:
    """The reason written in the comment of an import line (``""`` when there is none)."""
    if "#" not in line:
        return ""
    comment = _NOT_A_REASON.sub("", line.split("#", 1)[1]).strip(" #()")
    return comment if len(re.findall(r"[A-Za-z]{2,}", comment)) >= 2 else ""


def upward_imports(package: str = "eno_hf", layers: list[tuple[str, ...]] = LAYERS
                   ) -> list[tuple[str, str, int, str]]:
    """``(importer, imported, line number, line)`` of every import in ``package`` that runs up ``layers``.

    Raises:
        AssertionError: a part of ``package`` that ``layers`` does not name.
    """
    rank = {name: i for i, layer in enumerate(layers) for name in layer}
    graph = grimp.build_graph(package, include_external_packages=False, cache_dir=None)
    unplaced = sorted({part(m) for m in graph.modules} - set(rank))
    assert not unplaced, f"parts of {package} that LAYERS does not place: {unplaced}"
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if rank[part(imported)] < rank[part(importer)]:
                for d in graph.get_import_details(importer=importer, imported=imported):
                    found.append((importer, imported, d["line_number"], d["line_contents"]))
    return found


def import_circles(package: str = "eno_hf") -> list[frozenset[str]]:
    """Strongly connected components (Tarjan) of more than one module in ``package``'s import graph."""
    graph = grimp.build_graph(package, include_external_packages=False, cache_dir=None)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(frozenset(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges) + 100))
    for m in sorted(edges):
        if m not in index:
            visit(m)
    return found


def test_every_package_is_a_regular_package():
    """A folder without ``__init__.py`` is a namespace package, invisible to the import graph."""
    from pathlib import Path

    import eno_hf

    root = Path(eno_hf.__file__).parent
    missing = [str(d.relative_to(root)) for d in root.rglob("*") if d.is_dir()
               and any(d.glob("*.py")) and not (d / "__init__.py").exists()]
    assert not missing, f"folders of modules without __init__.py: {missing}"


def test_no_new_import_circles():
    circles = import_circles()
    new = [sorted(c) for c in circles if c not in KNOWN_CIRCLES]
    assert not new, f"new import circle(s) inside eno_hf: {new}"
    gone = [sorted(c) for c in KNOWN_CIRCLES if c not in circles]
    assert not gone, f"circle(s) no longer there, remove them from KNOWN_CIRCLES: {gone}"


def test_no_upward_import_without_its_reason():
    up = upward_imports()
    bare = [(i, m, n, line) for i, m, n, line in up if not reason_on_line(line) and (i, m) not in KNOWN_UPWARD]
    assert not bare, ("imports that run up LAYERS without a reason: write it as a comment on the line, or "
                      "import the other way round:\n" + "\n".join(f"  {i}:{n} -> {m}: {line}" for i, m, n, line in bare))
    still = {(i, m) for i, m, _, line in up if not reason_on_line(line)}
    gone = sorted(set(KNOWN_UPWARD) - still)
    assert not gone, f"KNOWN_UPWARD entries that no longer run up without a reason, remove them: {gone}"


def test_layer_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The check itself: an import up a layer is found, inside a function too; a comment with
    words is its reason, ``noqa`` alone is not."""
    pkg = tmp_path / "tower"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "top.py").write_text("from tower import ground\n")
    (pkg / "ground.py").write_text("def f():\n    from tower.top import x  # noqa: F401\n\n"
                                   "def g():\n    from tower import top  # the plug-in registry lives there\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    up = upward_imports("tower", [("top",), ("ground", "__init__")])
    assert [(i, m, n) for i, m, n, _ in up] == [("tower.ground", "tower.top", 2), ("tower.ground", "tower.top", 5)]
    assert [bool(reason_on_line(line)) for *_, line in up] == [False, True]


def test_circle_finder_sees_a_circle(tmp_path, monkeypatch):
    """The finder itself: a two-module circle made through an import inside a function is found."""
    pkg = tmp_path / "loopy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loopy import b\n")
    (pkg / "b.py").write_text("def f():\n    from loopy.a import x\n")
    (pkg / "c.py").write_text("from loopy import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_circles("loopy") == [frozenset({"loopy.a", "loopy.b"})]
