"""What every report notebook does around its analyses: load, filter, anonymise, record results.

Notebooks stay thin: a parameters cell, then ``data = notebook.load(...)``,
the analyses, and ``results.headline(...)`` / ``results.figure(...)`` for the
numbers and figures the index page and the tests read from ``<name>.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import WorkbenchError

#: Set by :func:`workbench.report.build_report` to a file holding the inputs it has validated,
#: so that its notebooks reuse them instead of reading and checking the same files again.
INPUTS_ENV = "WORKBENCH_VALIDATED_INPUTS"


#: How :func:`load` reads the inputs, with its defaults (the report's command-line options).
READ_OPTIONS = {"kind": "auto", "mapping": None, "quotas": None, "reps": None, "profile": None,
                "after_close": "auto", "lifecycle": "complete", "encoding": "utf-8", "dayfirst": False,
                "timezone": "UTC", "sheet": None}


def coerce_parameters(namespace: dict) -> dict:
    """Give the parameters of a notebook the types its parameters cell declares, in place.

    The parameters cell annotates each parameter (``n_draws: "int" = 10_000``),
    which is also what ``papermill --help-notebook`` shows. ``papermill -p``
    passes a list or a date as text, and a number where text was meant; this
    turns ``"[1, 5, 9]"`` into a list, ``"2026-11-12"`` into a checked date
    string, ``7`` into ``"7"`` for a text parameter, and refuses what does not
    fit with the parameter's name, its value and what to give instead.

    Parameters
    ----------
    namespace : dict
        The notebook's ``globals()`` (its ``__annotations__`` say the types).

    Returns
    -------
    dict
        The annotated parameters with their values.

    Examples
    --------
    >>> ns = {"__annotations__": {"weeks": "list[int]", "team": "Optional[str]"}, "weeks": "[1, 5]", "team": 7}
    >>> coerce_parameters(ns)
    {'weeks': [1, 5], 'team': '7'}
    """
    out = {}
    for name, annotation in namespace.get("__annotations__", {}).items():
        if name in namespace:
            namespace[name] = out[name] = _coerced(name, namespace[name], str(annotation))
    return out


def _coerced(name: str, value: object, annotation: str) -> object:
    import ast

    kind = annotation.replace(" ", "")
    optional = kind.startswith("Optional[")
    kind = kind.removeprefix("Optional[").removesuffix("]") if optional else kind
    if value is None or (optional and isinstance(value, str) and value.strip() in ("", "None", "null")):
        if optional:
            return None
        raise WorkbenchError(f"parameter {name!r} cannot be empty; it is {_kind_words(kind)}.",
                             hint=f"give it as -p {name} VALUE, or leave it out for its default.")

    def refuse() -> WorkbenchError:
        return WorkbenchError(f"parameter {name!r} is {value!r}, which is not {_kind_words(kind)}.",
                              hint=f"give it as -p {name} {_EXAMPLES.get(kind, 'VALUE')}.")

    text = value.strip() if isinstance(value, str) else None
    if kind == "str":
        return str(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
        if str(value).strip().lower() in words:
            return words[str(value).strip().lower()]
        raise refuse()
    if kind in ("int", "float"):
        try:
            number = float(text.replace("_", "")) if text is not None else float(value)
        except (TypeError, ValueError):
            raise refuse() from None
        if kind == "float":
            return number
        if not number.is_integer():
            raise refuse()
        return int(number)
    if kind == "list[int]":
        if text is not None:
            try:
                value = ast.literal_eval(text if text.startswith(("[", "(")) else f"[{text}]")
            except (ValueError, SyntaxError):
                raise refuse() from None
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise refuse()
        return items
    if kind == "date":
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            raise refuse() from None
        if pd.isna(stamp):
            raise refuse()
        return str(value) if isinstance(value, str) else stamp
    raise WorkbenchError(f"parameter {name!r} is annotated {annotation!r}, a type the notebooks do not use.",
                         hint="annotate it str, int, float, bool, date or list[int], optionally Optional[...].")


_EXAMPLES = {"int": "7", "float": "0.9", "bool": "True", "list[int]": '"[1, 5, 9]"', "date": "2026-11-12"}


def _kind_words(kind: str) -> str:
    return {"str": "text", "int": "a whole number", "float": "a number", "bool": "True or False",
            "list[int]": "a list of whole numbers such as [1, 5, 9]",
            "date": "a date such as 2026-11-12"}.get(kind, kind)


def _inputs_key(log: str | Path, **options: object) -> tuple:
    """What identifies a :func:`load`: its options, and each input file's path, size and
    modification time."""
    def stamp(value: object) -> object:
        if isinstance(value, (str, Path)) and Path(value).is_file():
            path = Path(value).resolve()
            stat = path.stat()
            return str(path), stat.st_size, stat.st_mtime_ns
        return str(value) if isinstance(value, Path) else value
    values = {**READ_OPTIONS, **options}
    return (stamp(log),) + tuple((k, stamp(values[k])) for k in READ_OPTIONS)


def save_inputs(data, path: str | Path, log: str | Path, **load_options: object) -> Path:
    """Write inputs validated by ``load(log, **load_options)`` for later loads of the same inputs
    to reuse (see :data:`INPUTS_ENV`).

    Pickled: only for a file this program writes into a folder of its own and reads back.
    """
    path = Path(path)
    with path.open("wb") as f:
        pickle.dump((_inputs_key(log, **load_options), data), f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _saved_inputs(key: tuple):
    """The inputs saved at :data:`INPUTS_ENV` if they were loaded as ``key`` says, else None."""
    path = os.environ.get(INPUTS_ENV)
    if not path or not Path(path).is_file():
        return None
    with open(path, "rb") as f:
        saved_key, data = pickle.load(f)
    return data if saved_key == key else None


def load(
    log: str | Path,
    *,
    kind: str = "auto",
    mapping: str | None = None,
    quotas: str | Path | None = None,
    reps: str | Path | None = None,
    profile: str | Path | None = None,
    team: str | None = None,
    region: str | None = None,
    anonymize: bool = False,
    salt: str | None = None,
    after_close: str = "auto",
    lifecycle: str = "complete",
    encoding: str = "utf-8",
    dayfirst: bool = False,
    timezone: str = "UTC",
    sheet: str | int | None = None,
    audit: bool = False,
    lookups: str | dict | None = None,
    costs: str | Path | None = None,
):
    """Load and validate the inputs, audit them if asked, anonymise if asked, keep one team or region if asked.

    Inside a report the inputs the report has already validated are reused
    (:data:`INPUTS_ENV`), provided they came from the same files and options.
    The reading options are those of :func:`workbench.io.load_sales_data`.
    ``audit`` puts :func:`workbench.audit.data_quality` (with the master tables
    ``lookups``, 'product=products.csv,...' or a dict) in ``findings``, computed
    on the real names before they are replaced; ``lookups``' product table also
    gives ``products`` (:func:`workbench.io.read_products`), and ``costs`` the
    costs of selling (:func:`workbench.io.read_costs`). With ``anonymize``, ``team``
    and ``region`` may be given as real names or as their pseudonyms.

    Returns
    -------
    SalesData
        As :func:`workbench.io.load_sales_data`, filtered and anonymised.
    """
    from .anonymize import PSEUDONYM_KINDS, Pseudonymizer, default_salt
    from .io import load_sales_data, parse_mapping

    options = dict(kind=kind, mapping=mapping, quotas=quotas, reps=reps, profile=profile, after_close=after_close,
                   lifecycle=lifecycle, encoding=encoding, dayfirst=dayfirst, timezone=timezone, sheet=sheet)
    data = _saved_inputs(_inputs_key(log, **options))
    if data is None:
        data = load_sales_data(log, **{**options, "mapping": parse_mapping(mapping) if mapping else None})
    from .audit import data_quality, parse_lookups
    from .io import read_costs, read_products

    lookups = parse_lookups(lookups)
    if audit and data.findings is None:
        data = dataclasses.replace(data, findings=data_quality(data, lookups=lookups))
    if costs is not None and data.costs is None:
        data = dataclasses.replace(data, costs=read_costs(costs, encoding=encoding))
    if data.products is None and (product := lookups.get("product")) is not None:
        data = dataclasses.replace(data, products=read_products(product, encoding=encoding))
    attrs = dict(data.log.attrs)  # the profile and the kind of input the log was read from
    if anonymize and not data.anonymized:
        data = anonymize_data(data, salt)
    for column, value in (("team", team), ("region", region)):
        if value is None:
            continue
        if anonymize and column in data.log.columns and not data.log[column].eq(value).any():
            value = Pseudonymizer(salt or default_salt()).pseudonym(PSEUDONYM_KINDS[column], value)
        data = dataclasses.replace(data, log=data.log[data.log[column] == value].reset_index(drop=True))
    data.log.attrs.update(attrs)
    return data


def anonymize_data(data, salt: str | None = None):
    """Replace rep, manager, team, region, account and deal names everywhere in a SalesData.

    Names in the validation reports' messages and in the findings are replaced
    too, and the inputs are named by their table ('log', 'reps', 'quotas'),
    not their file.
    """
    from .anonymize import Pseudonymizer, default_salt

    pseudo = Pseudonymizer(salt or default_salt())
    frames = {
        f.name: pseudo.frame(getattr(data, f.name))
        for f in dataclasses.fields(data)
        if isinstance(getattr(data, f.name), pd.DataFrame) and f.name != "quarantine"
    }
    frames["quarantine"] = pseudo.cells(data.quarantine, data.log.attrs.get("columns"))

    def hidden(finding):
        return dataclasses.replace(finding, message=pseudo.text(finding.message), examples=[
            {k: pseudo.value(v) if isinstance(v, str) else v for k, v in e.items()} for e in finding.examples])

    report = data.report
    if hasattr(report, "reports"):
        reports = {name: dataclasses.replace(r, source=f"the {name} table" if name != "log" else "the event log",
                                             warnings=[pseudo.text(w) for w in r.warnings],
                                             findings=[hidden(f) for f in r.findings])
                   for name, r in report.reports.items()}
        report = dataclasses.replace(report, reports=reports, warnings=[pseudo.text(w) for w in report.warnings])
    findings = None if data.findings is None else type(data.findings)(hidden(f) for f in data.findings)
    return dataclasses.replace(data, report=report, findings=findings, anonymized=True, **frames)


@contextlib.contextmanager
def skipping(analysis: str) -> Iterator[None]:
    """Run an analysis; if the data cannot support it, print one line saying why and go on.

    A log without the column an analysis needs (:class:`MissingColumnError`) or
    with too little history for it (any other :class:`WorkbenchError`) skips
    that analysis only, so one gap in a client's export does not sink the report.
    """
    try:
        yield
    except WorkbenchError as exc:
        reason = exc.problem.removesuffix("; skipped.").removesuffix(".")
        hint = f" {exc.hint[:1].upper()}{exc.hint[1:]}" if exc.hint else ""
        print(f"Skipped {analysis}: {reason[:1].lower()}{reason[1:]}.{hint}")


def show(table: pd.DataFrame, empty: str) -> pd.DataFrame | None:
    """Display ``table``, or print the one line ``empty`` says when it has no rows."""
    if table is None or len(table) == 0:
        print(empty)
        return None
    from IPython.display import display

    display(table)
    return table


def _plain(value: object) -> object:
    """JSON-safe version of numpy / pandas scalars and containers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return _plain(value.to_dict(orient="records"))
    if isinstance(value, pd.Series):
        return _plain(value.to_dict())
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Results:
    """Collects a notebook's key numbers and figures and writes them to ``<name>.json``.

    Parameters
    ----------
    name : str
        The notebook's name (file stem).
    output_dir : str or Path
        Where the JSON goes; figures go to its ``figures/`` folder.
    """

    def __init__(self, name: str, output_dir: str | Path = ".") -> None:
        self.name = name
        self.output_dir = Path(output_dir)
        self.values: dict = {"headline": [], "figures": []}

    def headline(self, label: str, value: object) -> None:
        """A number for the report's one-page summary."""
        self.values["headline"].append({"label": label, "value": _plain(value)})

    def tile(self, question: str, value: str, detail: str, trend: str | None = None) -> None:
        """The answer to one of the index's four questions (its tile, which links to this page):
        ``value`` in large type, ``detail`` in a sentence, ``trend`` against last quarter when known."""
        self.values["tile"] = {"question": question, "value": value, "detail": detail, "trend": trend}

    def has_tile(self) -> bool:
        """Whether this page has answered its question yet."""
        return "tile" in self.values

    def add_to_tile(self, sentence: str, *, trend: str | None = None) -> None:
        """Add a sentence to the tile's detail, and the tile's ``trend`` against last quarter when given."""
        self.values["tile"]["detail"] += f" {sentence}"
        if trend:
            self.values["tile"]["trend"] = trend

    def __setitem__(self, key: str, value: object) -> None:
        self.values[key] = _plain(value)

    def figure(self, fig, name: str):
        """Save a matplotlib figure as ``figures/<notebook>-<name>.png`` and return it for display."""
        folder = self.output_dir / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}-{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self.values["figures"].append(f"figures/{path.name}")
        return fig

    def map(self, process_map, name: str):
        """Save a process map (:func:`workbench.maps.draw_map`, or the level shown first of
        :func:`workbench.map_levels.map_levels`) as ``figures/<notebook>-<name>.svg`` and return the
        map for display (the levels with their slider)."""
        from IPython.display import HTML, SVG

        folder = self.output_dir / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        levels = getattr(process_map, "maps", None)
        path = (process_map.current if levels else process_map).save(folder / f"{self.name}-{name}.svg")
        self.values["figures"].append(f"figures/{Path(path).name}")
        return HTML(process_map.to_html()) if levels else SVG(process_map.to_svg())

    def write(self) -> Path:
        """Write the JSON file and return its path."""
        path = self.output_dir / f"{self.name}.json"
        path.write_text(json.dumps(self.values, indent=2, ensure_ascii=False), encoding="utf-8")
        return path


#: Where a notebook run outside a report writes its key numbers and figures (git-ignored).
DEFAULT_OUTPUT_DIR = "workbench-output"


def demo_inputs() -> dict[str, Path]:
    """The demo data's event log, reps, quotas, costs and product table, generated (seed 7, default size)
    when missing.

    In a source checkout they are its ``data/demo/`` (what ``make report``
    writes); an installed workbench keeps them in ``~/.cache/workbench/demo``.
    """
    from .synth import write_demo_data

    package = Path(__file__).resolve().parent
    checkout = package.parent
    folder = (checkout / "data" / "demo" if (checkout / "pyproject.toml").exists()
              else Path.home() / ".cache" / "workbench" / "demo")
    names = {"log": "events.parquet", "reps": "reps.csv", "quotas": "quotas.csv", "costs": "costs.csv",
             "products": "products.csv"}
    paths = {role: folder / name for role, name in names.items()}
    if not all(p.exists() for p in paths.values()):
        written = write_demo_data(folder, seed=7, size="default", progress=False)
        paths = {role: written["events" if role == "log" else role] for role in names}
    return paths


def _record_warnings() -> list[str]:
    """Record every library warning in a list (written to the page's JSON) instead of printing it.

    A reader of the report sees results, not ``ConvergenceWarning`` with a path; where a warning changes a
    result, the analysis says so in a sentence (for example the root causes' ``attrs['notes']``).
    """
    import warnings

    caught: list[str] = []

    def record(message, category, filename, lineno, file=None, line=None) -> None:
        text = f"{category.__name__}: {message}"
        if text not in caught:
            caught.append(text)

    warnings.showwarning = record
    return caught


def setup(
    name: str,
    *,
    log: str | Path | None,
    output_dir: str | Path | None = None,
    quarter: str | None = None,
    as_of: str | None = None,
    currency: str = "",
    **load_options,
):
    """Everything a report notebook does after its parameters cell.

    Loads the inputs (:func:`load`; without a ``log``, the demo data of
    :func:`demo_inputs` with its reps and quotas, and its costs and products for
    a notebook that passes ``costs``), says in one line when the
    process profile was derived from the data or does not know every activity,
    resolves the quarter and the as-of date, keeps only the events that had
    happened by the as-of date (a report as of a past date sees only what was
    known then) and opens the notebook's :class:`Results`, which writes to
    ``output_dir`` (default :data:`DEFAULT_OUTPUT_DIR` in the working folder,
    created when missing). Every table the notebook displays is then written for
    people (:func:`workbench.tables.install`: headers in words, money with
    ``currency``, percentages, days; long tables cut, whole in ``tables/``).

    Returns
    -------
    data, quarter, as_of, results
    """
    import warnings

    import matplotlib

    from . import tables
    from .calendar import happened, resolve_period

    caught = _record_warnings()
    warnings.filterwarnings("ignore", category=FutureWarning)
    # Tables mix numbers and dates; rounding them for display is meant for the numbers only.
    warnings.filterwarnings("ignore", message="obj.round has no effect")
    matplotlib.rcParams["figure.max_open_warning"] = 0
    pd.set_option("display.max_columns", 30, "display.width", 200, "display.precision", 2)
    if log is None:
        demo = demo_inputs()
        log = demo["log"]
        load_options = {**load_options, "reps": load_options.get("reps") or demo["reps"],
                        "quotas": load_options.get("quotas") or demo["quotas"]}
        if "costs" in load_options:  # the notebooks that show the customer KPIs
            load_options.update(costs=load_options["costs"] or demo["costs"],
                                lookups=load_options.get("lookups") or f"product={demo['products']}")
    output_dir = Path(DEFAULT_OUTPUT_DIR if output_dir is None else output_dir)
    (output_dir / "figures").mkdir(parents=True, exist_ok=True)
    tables.install(currency=currency, folder=output_dir / "tables", prefix=name)
    data = load(log, **load_options)
    if data.profile.derived or "Note:" in data.profile_note:
        print(data.profile_note)
    quarter, as_of = resolve_period(data.log, quarter, as_of)
    known = data.log[happened(data.log["timestamp"], as_of)].reset_index(drop=True)
    known.attrs.update(data.log.attrs)
    data = dataclasses.replace(data, log=known)
    results = Results(name, output_dir)
    results.values["library_warnings"] = caught  # the same list: filled as the page runs
    results["quarter"], results["as_of"] = quarter, as_of
    results["profile"] = {**data.profile.to_dict(), "derived": data.profile.derived, "note": data.profile_note}
    return data, quarter, as_of, results


def shared(key: tuple, compute):
    """``compute()``, once per report: inside a report (:data:`INPUTS_ENV`) the first notebook
    to ask computes it while the others wait, then all read the same result; elsewhere it
    is simply computed.

    ``key`` must name everything the result depends on (see :func:`fingerprint`).
    Pickled, in the report's private folder, as the validated inputs are.
    """
    inputs = os.environ.get(INPUTS_ENV)
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): each notebook computes its own
        fcntl = None
    if not inputs or fcntl is None:
        return compute()
    folder = Path(inputs).parent
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:20]
    target = folder / f"shared-{digest}.pickle"
    with open(folder / f"shared-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        if target.exists():
            with target.open("rb") as f:
                return pickle.load(f)
        value = compute()
        part = target.with_suffix(".part")
        with part.open("wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(part, target)
        return value


def once(analysis: Callable[..., Any], data, *, quarantine: bool = False, **options: Any) -> Any:
    """``analysis(data.log, profile=data.profile, **options)``, computed once per report (:func:`shared`):
    the pages that show the same analysis of the same log read one result.

    With ``quarantine=True`` the rows set aside are passed too (``quarantine=data.quarantine``).
    Options that are DataFrames (deviations found before) enter the key by their :func:`fingerprint`.

    Examples
    --------
    >>> from workbench import bottlenecks
    >>> ranking = once(bottlenecks.rank_bottlenecks, data, by="team", seed=0)  # doctest: +SKIP
    """
    kwargs = dict(options, profile=data.profile)
    if quarantine:
        kwargs["quarantine"] = data.quarantine
    key = ("once", analysis.__module__, analysis.__qualname__, fingerprint(data.log), repr(data.profile.to_dict()),
           fingerprint(data.quarantine) if quarantine else None,
           tuple((k, fingerprint(v) if isinstance(v, pd.DataFrame) else repr(v)) for k, v in sorted(options.items())))
    return shared(key, lambda: analysis(data.log, **kwargs))


def fingerprint(frame: pd.DataFrame | None) -> tuple | None:
    """A frame's size, columns and a hash of its values: two notebooks of one report given
    the same log agree on it."""
    if frame is None:
        return None
    return (len(frame), tuple(map(str, frame.columns)),
            int(pd.util.hash_pandas_object(frame, index=False).sum()) if len(frame) else 0)


#: The report's backtest of the forecast (notebooks 03 and 04 share it): tested quarters,
#: weeks of quarter (the as-of date's week is added), Monte Carlo draws per forecast.
BACKTEST = {"n_quarters": 6, "weeks": (1, 3, 5, 7, 9, 11, 13), "draws": 2_000}


def backtest(data, *, as_of: pd.Timestamp, seed: int, n_quarters: int = BACKTEST["n_quarters"],
             weeks=BACKTEST["weeks"], draws: int = BACKTEST["draws"], cache: dict | None = None):
    """The backtest of the report's forecaster on ``data.log``, computed once per report (:func:`shared`).

    Tests the ``n_quarters`` complete quarters before the as-of date, at ``weeks`` and at the
    as-of date's week of quarter (:class:`workbench.forecast.Backtest`); ``cache`` is shared
    with the forecaster fitted on the same log.

    Returns
    -------
    Backtest, fitted.
    """
    from . import forecast
    from .calendar import week_of_quarter

    weeks = sorted(set(int(w) for w in weeks) | {int(week_of_quarter(as_of))})

    def compute():
        estimator = forecast.QuotaForecaster(n_draws=draws, seed=seed, profile=data.profile)
        bt = forecast.Backtest(estimator, n_quarters=n_quarters, weeks=weeks, progress=False)
        return bt.fit(data.log, quotas=data.quotas, reps=data.reps, cache=cache)

    key = ("backtest", fingerprint(data.log), fingerprint(data.quotas),
           fingerprint(data.reps), data.profile.name, str(as_of), seed, n_quarters, tuple(weeks), draws)
    return shared(key, compute)
