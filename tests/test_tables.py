"""How a page writes a table (workbench.tables), against values worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench import tables


def test_each_kind_of_number_is_written_as_a_manager_reads_it():
    t = pd.DataFrame({
        "rep": ["Ann", "Bob"],
        "quota": [105_000.0, 1_250_000.4],
        "share_conforming": [0.0336, 1.0],
        "p90_days": [18_600 / 86_400, 12.25],
        "p_value": [3.2e-7, 0.0412],
        "deals": [3, 12_000],
        "ratio": [0.0336, 1234.5],
        "created": pd.to_datetime(["2026-03-01 00:00", "2026-03-02 14:30"], utc=True),
    })
    out = tables.for_people(t, currency="€")
    assert list(out.columns) == ["Rep", "Quota", "Share following the process", "Slowest tenth, days",
                                 "p-value", "Deals", "Ratio", "Created"]
    assert out.to_dict("list") == {
        "Rep": ["Ann", "Bob"],
        "Quota": ["€105,000", "€1,250,000"],
        "Share following the process": ["3.4%", "100.0%"],
        "Slowest tenth, days": ["0.2", "12.2"],
        "p-value": ["< 0.001", "0.041"],
        "Deals": ["3", "12,000"],
        "Ratio": ["0.034", "1,234"],
        "Created": ["2026-03-01", "2026-03-02 14:30"],  # no time zone
    }


def test_missing_values_are_blank_and_negative_money_keeps_its_sign():
    out = tables.for_people(pd.DataFrame({"gap_to_quota": [-4_890.0, float("nan")], "team": [None, "East"],
                                          "deals": pd.array([3, None], dtype="Int64"),
                                          "created": pd.to_datetime(["2026-01-02", None], utc=True)}),
                            currency="$")
    assert out.to_dict("list") == {"Gap to quota": ["-$4,890", ""], "Team": ["", "East"], "Deals": ["3", ""],
                                   "Created": ["2026-01-02", ""]}


def test_index_becomes_columns_when_it_names_rows_and_disappears_when_it_numbers_them():
    named = pd.DataFrame({"deals": [4]}, index=pd.Index(["Proposal"], name="stage"))
    assert tables.for_people(named).columns.tolist() == ["Stage", "Deals"]
    filtered = pd.DataFrame({"deals": [4, 5, 6]}).iloc[[2]]  # row label 2 is a position, not a name
    assert tables.for_people(filtered).columns.tolist() == ["Deals"]
    row = pd.DataFrame({"level": ["company"], "quota": [42_900.0], "p_hit_quota": [0.97]}).iloc[0].to_frame().T
    assert tables.for_people(row).iloc[0].tolist() == ["company", "42,900", "97.0%"]  # numbers, not objects


def test_yes_and_no_for_true_and_false():
    out = tables.for_people(pd.DataFrame({"win_significant": [True, False]}))
    assert out.to_dict("list") == {"Win rates differ": ["yes", "no"]}


def test_two_columns_with_one_header_keep_both():
    out = tables.for_people(pd.DataFrame({"n": [1], "cases": [2]}))
    assert out.columns.tolist() == ["Deals", "cases"] and out.iloc[0].tolist() == ["1", "2"]


def test_a_wide_table_is_split_into_parts_that_repeat_the_row_names():
    wide = pd.DataFrame({"team": ["East", "West"], **{f"measure_{i}": [0.5, 0.25] for i in range(29)}})
    shown = tables.for_people(wide)
    parts = tables.parts(shown)
    assert len(parts) >= 2
    assert all(p.columns[0] == "Team" for p in parts)
    assert sorted(c for p in parts for c in p.columns[1:]) == sorted(shown.columns[1:])  # nothing lost
    # each part's estimated width (7.5 px a character, 18 px padding) fits
    for p in parts:
        width = sum(7.5 * min(max(len(c), *(len(v) for v in p[c])), 40) + 18 for c in p.columns)
        assert width <= tables.MAX_WIDTH
    narrow = tables.for_people(wide.iloc[:, :5])
    assert len(tables.parts(narrow)) == 1


def test_a_long_table_is_cut_and_written_whole_beside_the_page(tmp_path):
    long = pd.DataFrame({"case_id": [f"D{i:04d}" for i in range(100)], "amount": range(100)})
    html = tables.to_html(long, csv=tmp_path / "tables" / "page-1.csv", link="tables/page-1.csv")
    assert html.count("<tr") == tables.MAX_ROWS + 1  # header and the first rows
    assert "The first 40 of 100 rows" in html and 'href="tables/page-1.csv"' in html
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "tables" / "page-1.csv"), long)


def test_install_makes_every_displayed_dataframe_a_table_for_people(tmp_path):
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        tables.install(currency="$", folder=tmp_path, prefix="02_bottlenecks")
        data, _ = shell.display_formatter.format(pd.DataFrame({"quota": [1.05e5], "p_win": [0.5]}))
        assert "$105,000" in data["text/html"] and "50.0%" in data["text/html"]
        assert "Chance of winning this quarter" in data["text/html"] and "e+05" not in data["text/html"]
    finally:
        shell.display_formatter.formatters["text/html"].pop(pd.DataFrame, None)
        InteractiveShell.clear_instance()
