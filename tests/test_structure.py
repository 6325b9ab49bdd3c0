"""The package's structure, as CONTRIBUTING.md states it: no import cycle, no private name used
across modules, modules of one capability (under 600 lines), one signature for analysis functions,
and an example in the docstring of every name the top level offers."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import workbench
from workbench.stats import N_BOOT

PACKAGE = Path(workbench.__file__).parent
MAX_LINES = 600
#: The modules whose functions take a log first: the analyses.
ANALYSES = ("discovery", "filters", "maps", "map_levels", "conformance", "bottlenecks", "root_causes", "performers", "kpis",
            "snapshot", "profile_fit")
#: Names CONTRIBUTING.md retired in favour of min_n and by (``level`` survives only as pm4py's
#: event-or-case scope of a filter).
RETIRED = {"min_visits", "min_deals", "min_closed", "min_history", "segment"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level else []
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def imports() -> dict[str, set[tuple[str, str]]]:
    """module -> {(imported workbench module, name or '')}, every import statement of the module."""
    out: dict[str, set[tuple[str, str]]] = {}
    for module, path in MODULES.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                target = resolve(module, node, path.name == "__init__.py") if node.level else node.module or ""
                if not target.startswith("workbench"):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add((sub, "") if sub in MODULES else (target, alias.name))
            elif isinstance(node, ast.Import):
                found |= {(a.name, "") for a in node.names if a.name.startswith("workbench")}
        out[module] = found
    return out


def test_no_module_imports_itself_back_through_others():
    graph = {m: {t for t, _ in deps if t in MODULES and t != m} for m, deps in imports().items()}
    # a package's __init__ re-exports its modules; an import of the package is an import of them
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t] if t in stack else [m, t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_no_private_name_is_imported_from_another_module():
    private = sorted({(m, f"{t}.{n}") for m, deps in imports().items() for t, n in deps
                      if n.startswith("_") and not n.startswith("__") and t != m})
    assert not private, private


def test_modules_hold_one_capability_each():
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, big


def public_analysis_functions():
    for name in ANALYSES:
        module = importlib.import_module(f"workbench.{name}")
        public = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
        for attr in public:
            f = getattr(module, attr, None)
            if inspect.isfunction(f) and f.__module__.startswith(module.__name__):
                params = list(inspect.signature(f).parameters.values())
                if params and params[0].name == "log":
                    yield f"{f.__module__}.{f.__name__}", params


@pytest.mark.parametrize("name, params", list(public_analysis_functions()), ids=lambda v: v if isinstance(v, str) else "")
def test_analysis_functions_follow_the_signature_convention(name, params):
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert positional in (["log"], ["log", "quotas"]), f"{name}: only the log (and quotas) are positional"
    by_name = {p.name: p for p in params}
    if "profile" in by_name:
        assert by_name["profile"].kind == inspect.Parameter.KEYWORD_ONLY and by_name["profile"].default is None
    assert not RETIRED & set(by_name), f"{name} uses {RETIRED & set(by_name)}"
    if "progress" in by_name:
        assert by_name["progress"].default is True, name
    if "n_boot" in by_name:
        assert by_name["n_boot"].default == N_BOOT, name


@pytest.mark.parametrize("name", sorted(workbench._LAZY))
def test_every_name_the_top_level_offers_has_an_example(name):
    doc = inspect.getdoc(getattr(workbench, name)) or ""
    assert "Examples" in doc and ">>>" in doc, f"workbench.{name} has no example in its docstring"


def test_the_top_level_completes_in_jupyter():
    names = dir(workbench)
    assert {"load_sales_data", "QuotaForecaster", "build_report", "WorkbenchError", "kpis"} <= set(names)
    assert not [n for n in names if n.startswith("_") and n != "__version__"], "private names in dir()"


def test_every_module_of_the_package_is_reachable_from_the_top_level():
    package = Path(workbench.__file__).parent
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {p.parent.name for p in package.glob("*/__init__.py")}
    modules.discard("cli")  # the command line, not an API
    assert modules == set(workbench._MODULES)
    assert all(callable(getattr(workbench.kpis, n, None)) for n in ("attainment", "pipeline_coverage"))


def test_the_import_graph_sees_the_imports_it_checks():
    """The graph the checks above walk is the code's: snapshot imports calendar, io's modules each other."""
    graph = imports()
    assert any(t == "workbench.calendar" for t, _ in graph["workbench.snapshot"])
    assert ("workbench.io.columns", "") in graph["workbench.io.logs"] or any(
        t == "workbench.io.columns" for t, _ in graph["workbench.io.logs"])
