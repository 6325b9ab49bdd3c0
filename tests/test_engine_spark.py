"""The same engine aggregations on Spark (local mode) give the DuckDB results."""

from __future__ import annotations

import shutil
import warnings

import pytest

from workbench import engine
from workbench.engine import backends as engine_backends
from workbench.engine import expressions as engine_expressions
from workbench.profile import PPVVC

pytestmark = pytest.mark.slow

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install pyspark)")
if shutil.which("java") is None:
    pytest.skip("no Java runtime: Spark cannot start (CI installs default-jre-headless)",
                allow_module_level=True)

from test_engine import mixed_log, same_result as same, tie_log  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    """One local Spark session for the whole module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark warns about pandas 3 on import
        con = engine.connect("pyspark")
    yield con
    con._session.stop()
    engine_backends.CONNECTIONS.pop("pyspark", None)


@pytest.mark.parametrize(
    "aggregation",
    [
        engine.directly_follows,
        engine.start_end_activities,
        engine.activity_counts,
        engine.variants,
        engine.case_durations,
        lambda log, **kw: engine.case_table(log, PPVVC, **kw),
        lambda log, **kw: engine.stage_visits(log, PPVVC, **kw),
        lambda log, **kw: engine.kpis_by_period(log, PPVVC, **kw),
    ],
    ids=["dfg", "start_end", "activities", "variants", "durations", "case_table", "stage_visits", "kpis"],
)
def test_spark_matches_duckdb(spark, aggregation):
    log = mixed_log()
    on_spark = aggregation(log, con=spark)
    on_duckdb = aggregation(log, backend="duckdb")
    assert len(on_duckdb) > 0
    same(on_spark, on_duckdb)


def test_discovery_bundle_on_spark_matches_duckdb(spark):
    on_spark, on_duckdb = engine.discovery_bundle(mixed_log(), con=spark), engine.discovery_bundle(mixed_log())
    for a, b in zip(vars(on_spark).values(), vars(on_duckdb).values()):
        assert len(b) > 0
        same(a, b)


def test_backend_keyword_reaches_spark(spark):
    v = engine.variants(tie_log(), backend="pyspark")
    assert v["count"].sum() == tie_log().case_id.nunique()


def test_spark_with_structs_matches_duckdbs_packed_keys(spark, monkeypatch):
    packed = [engine.variants(mixed_log()), engine.directly_follows(mixed_log())]
    monkeypatch.setattr(engine_expressions, "_KEY_TIME_BITS", -1)  # no time fits in a key: structs
    same(engine.variants(mixed_log(), con=spark), packed[0])
    same(engine.directly_follows(mixed_log(), con=spark), packed[1])


@pytest.mark.parametrize("name", ["mixed", "history", "salesforce"])
def test_deal_states_on_spark_match_duckdb(spark, demo_data, name):
    from test_snapshot import _comparable, state_logs

    profile, log = state_logs(demo_data)[name]
    on_spark = engine.deal_states(log, profile, con=spark)
    on_duckdb = engine.deal_states(log, profile)
    assert len(on_duckdb) == len(log)
    same(_comparable(on_spark), _comparable(on_duckdb))
