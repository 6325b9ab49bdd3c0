"""Property: whatever bytes arrive, only WorkbenchError escapes, and every input row is accounted for."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import WorkbenchError
from workbench.io import read_event_log

GOOD_ROWS = [
    ["case_id", "activity", "timestamp", "rep", "amount", "segment"],
    ["D1", "Lead Created", "2026-01-05 09:00", "ann", "1000", "smb"],
    ["D1", "Qualification", "05.01.2026 10:30", "ann", "1 000,50", "smb"],
    ["D1", "Proposal", "2026-01-20T16:00:00+03:00", "ann", "$1,200", "smb"],
    ["D1", "Closed Won", "2026-02-02", "ann", "1200", "smb"],
    ["D1", "Follow-up", "2026-02-03", "ann", "1200", "smb"],
    ["D2", "Lead Created", "01/06/2026", "bob", "500", "ent"],
    ["D2", "Closed Lost", "2026-01-15 17:45", "bob", "", "ent"],
    ["D3", "Lead Created", "2026-02-01 11:00", "cy", "7", "ent"],
]
GARBAGE = st.one_of(st.text(max_size=12), st.sampled_from(["", "-5", "NaN", "inf", "31/31/2026", "0001-01-01",
                                                          "1e400", '"', ",", ";", "\n", "\x00", "(3)"]))


def check(source, n_lines: int | None = None) -> None:
    """Load ``source``; only WorkbenchError may escape, and every input row is kept or quarantined once."""
    try:
        result = read_event_log(source)
    except WorkbenchError:
        return
    r = result.report
    assert r.rows_in == r.rows_kept + r.rows_quarantined
    assert len(result.quarantine) == r.rows_quarantined
    assert int(r.counts.sum()) == r.rows_quarantined
    assert len(result.log) == r.rows_kept >= 1  # an event log row is one event
    rows = result.quarantine["source_row"]
    assert rows.is_unique and (rows >= 1).all()
    if n_lines is not None:  # a data row number never exceeds the file's lines after the header
        assert (rows <= n_lines).all() and r.rows_in <= n_lines


@st.composite
def mutated_csv(draw) -> bytes:
    rows = [list(r) for r in GOOD_ROWS]
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(1, len(rows) - 1))
        j = draw(st.integers(0, max(len(rows[i]) - 1, 0)))
        action = draw(st.sampled_from(["delete_cell", "duplicate_cell", "garbage", "truncate", "duplicate_row",
                                       "shuffle_columns", "drop_header_cell"]))
        if action == "delete_cell":
            del rows[i][j: j + 1]
        elif action == "duplicate_cell":
            rows[i].insert(j, rows[i][j] if j < len(rows[i]) else "")
        elif action == "garbage":
            col = draw(st.sampled_from([2, 4, j]))
            if col < len(rows[i]):
                rows[i][col] = draw(GARBAGE)
        elif action == "truncate":
            rows[i] = rows[i][: j]
        elif action == "duplicate_row":
            rows.insert(i, list(rows[i]))
        elif action == "shuffle_columns":
            perm = draw(st.permutations(range(len(rows[0]))))
            rows = [[r[k] for k in perm if k < len(r)] for r in rows]
        elif action == "drop_header_cell":
            rows[0] = rows[0][:-1]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    text = buf.getvalue()
    if draw(st.booleans()):  # cut the file anywhere, even inside a line or a quote
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8")


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_only_raise_workbench_error(tmp_path, data):
    path = tmp_path / "random.csv"
    path.write_bytes(data)
    check(path)


@SETTINGS
@given(data=mutated_csv())
def test_mutated_csv_keeps_the_accounting(tmp_path, data):
    path = tmp_path / "mutated.csv"
    path.write_bytes(data)
    check(path, n_lines=max(len(data.decode("utf-8").splitlines()) - 1, 0))


@settings(max_examples=40, deadline=None)
@given(cells=st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6), GARBAGE, GARBAGE), min_size=1,
                      max_size=8))
def test_random_dataframes(cells):
    import pandas as pd

    df = pd.DataFrame(cells, columns=["case_id", "activity", "timestamp", "amount"])
    check(df)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(alphabet=st.sampled_from(list("AB,;\t\"\n\r 0123456789-:./+Z$()é")), max_size=300))
def test_random_text_under_a_good_header(tmp_path, body):
    path = tmp_path / "text.csv"
    path.write_text("case_id,activity,timestamp,amount\n" + body, encoding="utf-8")
    check(path)


DATES = st.one_of(st.just(""), st.sampled_from(["2026-01-01", "2026-01-05", "2026-02-01", "05.01.2026", "nope"]))


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["A", "B", "C", ""]), DATES, DATES,
                               st.sampled_from(["Won", "Lost", "Open", "", "???"]), DATES,
                               st.sampled_from(["100", "-1", "x", ""])), min_size=1, max_size=8),
       after_close=st.sampled_from(["quarantine", "keep"]))
def test_opportunity_rows_are_accounted_for(rows, after_close):
    import pandas as pd

    df = pd.DataFrame(rows, columns=["id", "created", "proposal", "stage", "closed", "value"])
    try:
        result = read_event_log(df, milestones={"Lead Created": "created", "Proposal": "proposal"},
                                final_stage="stage", close_date="closed", after_close=after_close)
    except WorkbenchError:
        return
    r = result.report
    assert r.rows_in == len(df) == r.rows_kept + r.rows_quarantined == r.rows_kept + len(result.quarantine)
    # every kept row makes at least one event and no event comes from a quarantined row
    kept_ids = set(df["id"]) - {""}
    assert set(result.log["case_id"]) <= kept_ids
    assert result.log["case_id"].nunique() == r.rows_kept
