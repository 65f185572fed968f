"""The import structure of ``eno_hf``: data moves one way (``docs/architecture.md``).

Every import counts, the ones inside functions too (``grimp`` reads them all). A new import
circle between modules of ``eno_hf`` fails this test; the circles that remain are listed in
``KNOWN_CIRCLES`` with why, and the test fails too when one of them is gone (so the list is kept
true).
"""

from __future__ import annotations

import sys

import grimp

KNOWN_CIRCLES: dict[frozenset[str], str] = {}


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
