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
- Imports inside functions: an import of an ``eno_hf`` module inside a function (or method) fails
  unless it has a reason to be there: the module it imports loads, through its own top-level imports,
  a ``HEAVY`` package that the importer does not load at its top level (start-up cost); an
  ``except ImportError`` around it (optional dependency); or the reason as a comment on its line
  (``# looked up at call time (tests patch it)``). Read from the source (``ast``), top-level edges only.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


HEAVY: frozenset[str] = frozenset({
    "torch", "torchaudio", "torchcodec", "transformers", "datasets", "peft", "accelerate", "librosa", "numba",
    "sklearn", "scipy", "pandas", "pyarrow", "prefect", "prefect_dask", "dask", "distributed", "clearml", "onnx",
    "onnxruntime", "skl2onnx", "matplotlib", "fastapi", "uvicorn", "pretty_midi", "mido", "music21", "pedalboard",
    "soxr", "pyloudnorm", "soundfile", "mir_eval", "basic_pitch", "huggingface_hub", "safetensors", "numpy", "grimp",
    # measured with `python -X importtime` (tens to hundreds of ms each; `import eno_hf.cli` takes ~80 ms in all)
    "pydantic", "httpx", "joblib", "filelock", "muq",
})
"""Third-party packages whose import costs start-up time (``numpy`` too: ``eno --help`` does without it)."""

_OPTIONAL = {"ImportError", "ModuleNotFoundError"}


@dataclass(frozen=True)
class EnoImport:
    """An import of an ``eno_hf`` module: where it is and whether an ``ImportError`` handler guards it."""

    importer: str
    imported: str
    path: Path
    line: int
    end_line: int
    optional: bool


def module_files(package: str) -> dict[str, Path]:
    """Module name -> file of every module in ``package`` (its linked folders followed, as grimp does)."""
    spec = importlib.util.find_spec(package)
    assert spec and spec.origin, f"{package} is not importable"
    root = Path(spec.origin).parent
    found = {}
    for folder, _, files in os.walk(root, followlinks=True):
        here = Path(folder)
        if not (here / "__init__.py").exists():
            continue
        names = [package, *here.relative_to(root).parts]
        for f in files:
            if f.endswith(".py"):
                found[".".join(names if f == "__init__.py" else [*names, f[:-3]])] = here / f
    return found


def _is_type_checking(node: ast.stmt) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): a block that never runs."""
    return isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}


def _catches_import_error(node: ast.Try) -> bool:
    """Whether one of a ``try``'s handlers catches ``ImportError`` or ``ModuleNotFoundError``."""
    for handler in node.handlers:
        caught = handler.type
        names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(n, ast.Name) and n.id in _OPTIONAL for n in names):
            return True
    return False


def _walk_imports(body: list[ast.stmt], in_function: bool = False, optional: bool = False
                  ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Every import statement under ``body`` with whether it runs in a function and whether it is optional.

    ``if TYPE_CHECKING:`` blocks are left out: they never run.
    """
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function, optional
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _walk_imports(node.body, True, False)
        elif _is_type_checking(node):
            yield from _walk_imports(node.orelse, in_function, optional)
        else:
            guarded = optional or (isinstance(node, ast.Try) and _catches_import_error(node))
            yield from _walk_imports(getattr(node, "body", []), in_function, guarded)
            for field in ("orelse", "finalbody"):
                yield from _walk_imports(getattr(node, field, []), in_function, optional)
            for block in [*getattr(node, "handlers", []), *getattr(node, "cases", [])]:
                yield from _walk_imports(block.body, in_function, optional)


def _targets(module: str, node: ast.Import | ast.ImportFrom, files: dict[str, Path]) -> list[str]:
    """The modules an import statement in ``module`` loads (absolute names; a name imported ``from`` a package
    counts as its submodule when there is one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    source = node.module or ""
    if node.level:
        here = module.split(".") if files[module].name == "__init__.py" else module.split(".")[:-1]
        source = ".".join([*here[: len(here) - node.level + 1], *([source] if source else [])])
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in files else source for a in node.names]


def heavy_at_import(package: str = "eno_hf") -> dict[str, frozenset[str]]:
    """Module -> the ``HEAVY`` packages that importing it loads: its own top-level imports and, transitively,
    those of the modules of ``package`` it imports at top level (and of its parent packages)."""
    files = module_files(package)
    direct: dict[str, set[str]] = {m: set() for m in files}
    edges: dict[str, set[str]] = {m: {m.rsplit(".", 1)[0]} if "." in m else set() for m in files}
    for m, path in files.items():
        for node, in_function, _ in _walk_imports(ast.parse(path.read_text()).body):
            if in_function:
                continue
            for target in _targets(m, node, files):
                top = target.split(".")[0]
                if top == package:
                    edges[m] |= {".".join(target.split(".")[:i]) for i in range(1, target.count(".") + 2)} & set(files)
                elif top in HEAVY:
                    direct[m].add(top)
    heavy = {}
    for m in files:
        seen, todo = {m}, [m]
        while todo:
            for n in edges[todo.pop()] - seen:
                seen.add(n)
                todo.append(n)
        heavy[m] = frozenset().union(*(direct[n] for n in seen))
    return heavy


def in_function_imports(package: str = "eno_hf") -> list[EnoImport]:
    """Every import of a module of ``package`` that runs inside a function or method."""
    files = module_files(package)
    found = []
    for m, path in sorted(files.items()):
        for node, in_function, optional in _walk_imports(ast.parse(path.read_text()).body):
            if in_function:
                for target in dict.fromkeys(_targets(m, node, files)):
                    if target.split(".")[0] == package:
                        found.append(EnoImport(m, target, path, node.lineno, node.end_lineno or node.lineno, optional))
    return found


def unjustified_in_function_imports(package: str = "eno_hf") -> list[EnoImport]:
    """The in-function imports of ``package`` with no reason to be there: the imported module loads no
    ``HEAVY`` package that the importer does not load already, no ``ImportError`` handler guards it, and
    its line carries no reason as a comment."""
    heavy = heavy_at_import(package)
    lines: dict[Path, list[str]] = {}
    bare = []
    for imp in in_function_imports(package):
        text = " ".join(lines.setdefault(imp.path, imp.path.read_text().splitlines())[imp.line - 1: imp.end_line])
        extra = heavy.get(imp.imported, frozenset()) - heavy[imp.importer]
        if not (extra or imp.optional or reason_on_line(text)):
            bare.append(imp)
    return bare


def test_every_package_is_a_regular_package():
    """A folder without ``__init__.py`` is a namespace package, invisible to the import graph."""
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


def test_no_in_function_import_without_its_reason():
    bare = unjustified_in_function_imports()
    root = Path.cwd()
    where = [f"  {i.path.relative_to(root) if i.path.is_relative_to(root) else i.path}:{i.line} -> {i.imported}"
             for i in bare]
    assert not bare, ("imports of eno_hf modules inside functions with no reason to be there (the module they import "
                      "loads no HEAVY package that the importer does not load already, and no ImportError handler "
                      "guards them): move them to the module's top-level imports, or write the real reason as a "
                      "comment on the line:\n" + "\n".join(where))


def test_in_function_check_sees_an_unjustified_import(tmp_path, monkeypatch):
    """The check itself: an in-function import is let be when the imported module loads a HEAVY package
    (through its own top-level imports) that the importer does not, under ``try/except ImportError``, or
    with a reason on its line; not when the importer loads that package already, nor under ``TYPE_CHECKING``."""
    pkg = tmp_path / "lazy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "heavy.py").write_text("import numpy as np\n")
    (pkg / "light.py").write_text("from lazy.sub import heavy\n")  # numpy, through its own top-level import
    (pkg / "plain.py").write_text("X = 1\n")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from lazy import plain\n"
        "def f():\n    from lazy.light import heavy\n"  # 5: loads numpy, a does not: fine
        "def g():\n    from lazy import plain\n"  # 7: nothing heavy: moves up
        "class C:\n    def m(self):\n        from lazy.plain import X  # the registry is filled when it runs\n"
        "def h():\n    try:\n        from lazy import plain\n    except ImportError:\n        pass\n")
    (pkg / "b.py").write_text("import numpy\ndef f():\n    from lazy.sub import heavy\n")  # 3: b has numpy already
    monkeypatch.syspath_prepend(str(tmp_path))
    assert heavy_at_import("lazy")["lazy.light"] == {"numpy"}
    assert [(i.importer, i.line) for i in in_function_imports("lazy")] == [
        ("lazy.a", 5), ("lazy.a", 7), ("lazy.a", 10), ("lazy.a", 13), ("lazy.b", 3)]
    assert [(i.importer, i.imported, i.line) for i in unjustified_in_function_imports("lazy")] == [
        ("lazy.a", "lazy.plain", 7), ("lazy.b", "lazy.sub.heavy", 3)]
