"""The shape of the package, read from its import graph (AST, nothing imported).

Faces (``report/``, ``web/``, ``cli.py``) sit on top; ``demo.py`` and ``project.py`` orchestrate and
may use them; every other module (sources, network, measures, planning) is analysis and never
imports a face. No import cycles, counting imports inside functions. An import inside a function
is allowed only for start-up time and says so in a comment on its line or the line above.
"""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
FACES = ("nearcare.report", "nearcare.web", "nearcare.cli")
ORCHESTRATION = ("nearcare.demo", "nearcare.project")


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    path: Path
    line: int
    in_function: bool
    type_only: bool  # under ``if TYPE_CHECKING:``: never runs, so it cannot close a cycle
    commented: bool


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``root``."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _comment_lines(source: str) -> set[int]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0] for t in tokens if t.type == tokenize.COMMENT}


def _owning_module(name: str, modules: dict[str, Path]) -> str | None:
    """The longest module of the package that ``name`` is, or lies in (``a.b.attr`` -> ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_edges(root: Path, package: str) -> list[Edge]:
    """Every import of one of the package's modules by another, wherever it stands in the file."""
    modules = module_names(root, package)
    edges: list[Edge] = []
    for importer, path in modules.items():
        source = path.read_text(encoding="utf-8")
        reader = _FileReader(importer, path, modules, _comment_lines(source))
        reader.visit(ast.parse(source, str(path)), in_function=False, type_only=False)
        edges += reader.edges
    return edges


@dataclass
class _FileReader:
    importer: str
    path: Path
    modules: dict[str, Path]
    comments: set[int]

    def __post_init__(self) -> None:
        self.edges: list[Edge] = []

    def visit(self, node: ast.AST, *, in_function: bool, type_only: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            self.visit_body(node.body, in_function=in_function, type_only=True)
            self.visit_body(node.orelse, in_function=in_function, type_only=type_only)
            return
        inside = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for _field, value in ast.iter_fields(node):
            if isinstance(value, list) and value and all(isinstance(v, ast.stmt) for v in value):
                self.visit_body(value, in_function=inside, type_only=type_only)
            else:
                for child in value if isinstance(value, list) else [value]:
                    if isinstance(child, ast.AST):
                        self.visit(child, in_function=inside, type_only=type_only)

    def visit_body(self, body: list[ast.stmt], *, in_function: bool, type_only: bool) -> None:
        """Statements in order; a run of imports shares the comment on the line above its first."""
        run_start: int | None = None
        for statement in body:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                run_start = statement.lineno if run_start is None else run_start
                lines = range(run_start - 1, (statement.end_lineno or statement.lineno) + 1)
                commented = any(line in self.comments for line in lines)
                for target in _targets(
                    statement, self.importer, self.path.name == "__init__.py", self.modules
                ):
                    self.edges.append(
                        Edge(
                            self.importer,
                            target,
                            self.path,
                            statement.lineno,
                            in_function,
                            type_only,
                            commented,
                        )
                    )
            else:
                run_start = None
                self.visit(statement, in_function=in_function, type_only=type_only)


def _targets(
    node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: dict[str, Path]
) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the importer's package, one level up per extra dot
            anchor = importer.split(".") if is_package else importer.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
        ]
    found = (_owning_module(name, modules) for name in names)
    return sorted({m for m in found if m is not None and m != importer})


def _is_under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def upward_imports(edges: list[Edge], faces=FACES, orchestration=ORCHESTRATION) -> list[Edge]:
    """Imports of a face by a module that is neither a face nor orchestration."""
    return [
        e for e in edges if _is_under(e.imported, faces) and not _is_under(e.importer, faces + orchestration)
    ]


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan), over imports that run."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if not e.type_only:
            graph.setdefault(e.importer, set()).add(e.imported)
            graph.setdefault(e.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return groups


def uncommented_lazy_imports(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if e.in_function and not e.commented]


def _where(e: Edge) -> str:
    return f"{e.path}:{e.line}: {e.importer} -> {e.imported}"


# -- the checker on a made-up package, so that each rule is seen to fail -------------------------


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_checker_finds_an_upward_import_a_cycle_and_an_uncommented_lazy_import(tmp_path):
    _write_package(
        tmp_path,
        {
            "nearcare/__init__.py": "",
            "nearcare/store.py": "",
            "nearcare/equity.py": """
                from nearcare.store import Store

                def sections():
                    from nearcare.report.maps import choropleth

                def load():
                    # lazy: start-up time
                    x = 1
                    from nearcare.store import Store
                """,
            "nearcare/report/__init__.py": "from nearcare.report.maps import choropleth\n",
            "nearcare/report/maps.py": "from nearcare import equity\n",
            "nearcare/demo.py": "from nearcare.report import maps\n",
        },
    )
    edges = import_edges(tmp_path, "nearcare")
    assert [(e.importer, e.imported) for e in upward_imports(edges)] == [
        ("nearcare.equity", "nearcare.report.maps")
    ]
    assert cycles(edges) == [["nearcare.equity", "nearcare.report.maps"]]
    # the comment in load() is above another statement, not above the import
    assert [(e.importer, e.line) for e in uncommented_lazy_imports(edges)] == [
        ("nearcare.equity", 5),
        ("nearcare.equity", 10),
    ]


def test_checker_accepts_a_layered_package(tmp_path):
    _write_package(
        tmp_path,
        {
            "nearcare/__init__.py": "__version__ = '0'\n",
            "nearcare/store.py": "",
            "nearcare/equity.py": """
                from typing import TYPE_CHECKING

                from nearcare.store import Store

                if TYPE_CHECKING:
                    from nearcare.project import Project  # types only: never runs

                def load():
                    # lazy: keeps `import nearcare.equity` quick
                    from nearcare.store import Store
                    from nearcare import store
                """,
            "nearcare/project.py": "from nearcare import equity\nfrom .report import area_report\n",
            "nearcare/report/__init__.py": "from nearcare.report.maps import choropleth\n",
            "nearcare/report/maps.py": "from nearcare import __version__, equity\n",
        },
    )
    edges = import_edges(tmp_path, "nearcare")
    assert ("nearcare.project", "nearcare.report") in {(e.importer, e.imported) for e in edges}
    assert ("nearcare.report.maps", "nearcare") in {(e.importer, e.imported) for e in edges}
    assert upward_imports(edges) == []
    assert cycles(edges) == []  # equity -> project is for types only
    assert uncommented_lazy_imports(edges) == []


# -- the rules on nearcare itself -----------------------------------------------------------------


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_edges(SRC, "nearcare")


def test_nearcare_edges_are_read(edges):
    pairs = {(e.importer, e.imported) for e in edges}
    assert ("nearcare.demo", "nearcare.report") in pairs
    assert ("nearcare.report.equity", "nearcare.equity") in pairs
    assert ("nearcare.travel", "nearcare.network.search") in pairs
    assert len(edges) > 100


def test_analysis_never_imports_a_face(edges):
    upward = upward_imports(edges)
    assert not upward, "analysis modules import a face:\n" + "\n".join(map(_where, upward))


def test_no_import_cycles(edges):
    found = cycles(edges)
    assert not found, "import cycles (function-level imports included):\n" + "\n".join(
        " <-> ".join(group) for group in found
    )


def test_lazy_imports_say_why(edges):
    lazy = uncommented_lazy_imports(edges)
    assert not lazy, (
        "imports of nearcare modules inside functions need a comment (on the line or the line above) "
        "saying they are there for start-up time:\n" + "\n".join(map(_where, lazy))
    )


def test_importing_nearcare_and_drawing_leaves_the_matplotlib_backend_alone():
    """A notebook's backend survives ``import nearcare`` and a report figure being drawn."""
    script = """
        import matplotlib
        matplotlib.use("svg")
        import nearcare
        from nearcare.report import maps
        figure = maps.bar_chart([1, 2], [3.0, 4.0], title="t", xlabel="x", ylabel="y")
        assert maps.png_data_uri(figure).startswith("data:image/png;base64,")
        import matplotlib.pyplot as plt
        print(matplotlib.get_backend(), len(plt.get_fignums()))
    """
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"PYTHONPATH": str(SRC)},
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["svg", "0"]  # backend unchanged, no pyplot figure left open


# The layers, lowest first (README, "Code layout"): a module may import its own layer or one below.
LAYERS: dict[str, tuple[str, ...]] = {
    "base": (
        "nearcare._errors",
        "nearcare._format",
        "nearcare._progress",
        "nearcare._version",
        "nearcare.distributed",
        "nearcare.geo",
    ),
    "store": ("nearcare.store",),
    "sources": ("nearcare.sources",),
    "area": ("nearcare.area", "nearcare.atlas", "nearcare.bundle", "nearcare.export", "nearcare.fetch"),
    "network": ("nearcare.network",),
    "measures": (
        "nearcare.travel",
        "nearcare.access",
        "nearcare.need",
        "nearcare.equity",
        "nearcare.allocation",
        "nearcare.flows",
        "nearcare.workforce",
    ),
    "planning": ("nearcare.scenarios", "nearcare.neighbourhoods", "nearcare.defib", "nearcare.hubs"),
    "report": ("nearcare.report", "nearcare.legend"),
    "api": ("nearcare.project", "nearcare.demo"),
    "faces": ("nearcare.web", "nearcare.cli"),
}


def layer_of(module: str, layers: dict[str, tuple[str, ...]] = LAYERS) -> int | None:
    """The rank of the module's layer (the package root ``nearcare`` re-exports the API: top)."""
    if module == "nearcare":
        return len(layers)
    for rank, prefixes in enumerate(layers.values()):
        if _is_under(module, prefixes):
            return rank
    return None


def layer_violations(edges: list[Edge], layers: dict[str, tuple[str, ...]] = LAYERS) -> list[Edge]:
    """Imports of a higher layer (type-only imports included: they show a dependency too)."""
    return [
        e
        for e in edges
        if (low := layer_of(e.importer, layers)) is not None
        and (high := layer_of(e.imported, layers)) is not None
        and high > low
    ]


def test_every_module_has_a_layer(edges):
    modules = {e.importer for e in edges} | {e.imported for e in edges}
    assert not sorted(m for m in modules if layer_of(m) is None)


def test_modules_import_only_their_own_layer_or_below(edges):
    upward = layer_violations(edges)
    assert not upward, "imports of a higher layer:\n" + "\n".join(map(_where, upward))


def test_layer_check_finds_a_measure_importing_planning(tmp_path):
    _write_package(
        tmp_path,
        {
            "nearcare/__init__.py": "",
            "nearcare/access.py": "from nearcare.scenarios import evaluate\n",
            "nearcare/scenarios.py": "from nearcare.access import e2sfca\n",
        },
    )
    found = layer_violations(import_edges(tmp_path, "nearcare"))
    assert [(e.importer, e.imported) for e in found] == [("nearcare.access", "nearcare.scenarios")]
