"""Logs where they live: the engine's aggregations run inside PostgreSQL and equal DuckDB's,
and a database table reads, checks and reports like a file.

Needs a PostgreSQL server and a URL to a database the tests may create tables in, in
``WORKBENCH_TEST_POSTGRES`` (``.ci/run`` installs the server with apt, starts it and sets it).
"""

from __future__ import annotations

import os
import uuid
import warnings

import ibis
import pandas as pd
import pytest

from workbench import engine
from workbench.check import check_file
from workbench.errors import WorkbenchError
from workbench.io import read_event_log
from workbench.profile import PPVVC

pytest.importorskip("psycopg", reason="Ibis's PostgreSQL backend is not installed (pip install '.[postgres]')")
URL = os.environ.get("WORKBENCH_TEST_POSTGRES")
if not URL:
    pytest.skip("no PostgreSQL server: set WORKBENCH_TEST_POSTGRES (.ci/run starts one and sets it)",
                allow_module_level=True)

from test_engine import mixed_log, same_result as same  # noqa: E402


@pytest.fixture(scope="module")
def database():
    """A connection and a fresh table of the mixed log (with its input order as ``_ord``)."""
    con = ibis.connect(URL)
    name = f"events_{uuid.uuid4().hex[:12]}"
    log = mixed_log()
    con.create_table(name, log.assign(_ord=range(len(log))))
    yield con, name, log
    con.raw_sql(f'DROP TABLE IF EXISTS "{name}"').close()  # Ibis's drop_table writes no name here


AGGREGATIONS = {
    "dfg": engine.directly_follows,
    "start_end": engine.start_end_activities,
    "activities": engine.activity_counts,
    "variants": engine.variants,
    "durations": engine.case_durations,
    "case_table": lambda log, **kw: engine.case_table(log, PPVVC, **kw),
    "stage_visits": lambda log, **kw: engine.stage_visits(log, PPVVC, **kw),
    "kpis": lambda log, **kw: engine.kpis_by_period(log, PPVVC, **kw),
}


@pytest.mark.parametrize("name", ["mixed", "history", "salesforce"])
def test_deal_states_in_postgresql_equal_duckdbs(demo_data, name):
    from test_snapshot import _comparable, state_logs

    profile, log = state_logs(demo_data)[name]
    con = ibis.connect(URL)
    table = f"states_{uuid.uuid4().hex[:12]}"
    stored = log.assign(_ord=range(len(log)))
    stored.attrs = {}
    con.create_table(table, stored)
    try:
        in_postgres = engine.deal_states(con.table(table), profile)
    finally:
        con.raw_sql(f'DROP TABLE IF EXISTS "{table}"').close()
    assert len(in_postgres) == len(log)
    same(_comparable(in_postgres), _comparable(engine.deal_states(log, profile)))


@pytest.mark.parametrize("aggregation", list(AGGREGATIONS))
def test_every_aggregation_in_postgresql_equals_duckdbs(database, aggregation):
    con, name, log = database
    fn = AGGREGATIONS[aggregation]
    in_postgres = fn(con.table(name))
    on_duckdb = fn(log)
    assert len(on_duckdb) > 0
    same(in_postgres, on_duckdb)


def test_the_discovery_bundle_in_postgresql_and_through_a_url(database):
    con, name, log = database
    expected = engine.discovery_bundle(log)
    for source in (con.table(name), f"{URL}?table={name}"):
        for ours, theirs in zip(vars(engine.discovery_bundle(source)).values(), vars(expected).values()):
            same(ours, theirs)


def test_a_table_reads_and_checks_as_a_file_does(database, tmp_path, monkeypatch):
    con, name, log = database
    url = f"{URL}?table={name}"
    ordered = log.sort_values(list(log.columns), kind="stable")  # a table's rows come ordered by every column
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_table = read_event_log(url)
        from_frame = read_event_log(ordered.reset_index(drop=True))
    pd.testing.assert_frame_equal(from_table.log.drop(columns="_ord"), from_frame.log, check_dtype=False)
    assert from_table.report.counts.to_dict() == from_frame.report.counts.to_dict()
    monkeypatch.chdir(tmp_path)
    report, quarantine = check_file(url)
    assert report.rows_in == len(log)
    assert quarantine is None or quarantine.parent == tmp_path


def test_a_bad_database_url_says_what_to_do(database):
    con, name, log = database
    with pytest.raises(WorkbenchError, match=r"names no table.*\?table=<name>"):
        read_event_log(URL)
    with pytest.raises(WorkbenchError, match="has no table 'no_such_table'"):
        read_event_log(f"{URL}?table=no_such_table")
    wrong = URL.replace("://", "://nobody:wrong@", 1) if "@" not in URL else URL
    if wrong != URL:
        with pytest.raises(WorkbenchError, match="cannot connect to the database") as err:
            read_event_log(f"{wrong}?table={name}")
        assert "wrong" not in str(err.value)  # the password is never shown


@pytest.mark.slow
def test_a_report_from_a_database_table_names_no_password(tmp_path):
    from workbench.cli import main
    from workbench.report import build_report

    assert main(["demo-data", "--size", "tiny", "--out", str(tmp_path / "demo")]) == 0
    con = ibis.connect(URL)
    name = f"demo_{uuid.uuid4().hex[:12]}"
    con.create_table(name, pd.read_parquet(tmp_path / "demo" / "events.parquet"))
    try:
        url = f"{URL}?table={name}"
        index = build_report(log=url, reps=tmp_path / "demo" / "reps.csv", quotas=tmp_path / "demo" / "quotas.csv",
                             out=tmp_path / "reports", timeout=300,
                             extra_parameters={"n_draws": 2000, "backtest_quarters": 2, "backtest_weeks": [4, 8],
                                               "backtest_draws": 500})
        assert index.exists()
        from urllib.parse import urlsplit

        password = urlsplit(URL).password
        if password:
            for f in index.parent.rglob("*"):
                if f.is_file() and f.suffix in (".html", ".ipynb", ".json"):
                    assert password not in f.read_text(encoding="utf-8", errors="ignore"), f
    finally:
        con.raw_sql(f'DROP TABLE IF EXISTS "{name}"').close()
