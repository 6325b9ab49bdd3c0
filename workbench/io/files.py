"""Reading input files (CSV, Excel, Parquet, XES) or DataFrames as raw tables, without checking a value."""

from __future__ import annotations

import codecs
import csv
import io as _io
import warnings as _warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from ..validation import RowFlags, plain_reason
from ..database import hide_password, is_database_url, read_database

#: Cell separators tried on a CSV's header line, most common first.
SEPARATORS = (",", ";", "\t", "|")


@dataclass
class RawTable:
    """An input table as read, before any check.

    Attributes
    ----------
    frame : DataFrame
        The cells as read (strings for CSV, typed for Parquet/XES/DataFrames).
    source : str
        File path or '<DataFrame>', used in messages.
    source_row : ndarray of int
        1-based data row in the file of each row of ``frame``.
    flags : RowFlags
        Problems found while reading (lines with too many fields).
    warnings : list of str
    header : list of str
        The column names as the file wrote them (``frame`` renames a repeated
        name 'amount' to 'amount.1'; :mod:`workbench.findings` reports it).
    """

    frame: pd.DataFrame
    source: str
    source_row: np.ndarray
    flags: RowFlags
    warnings: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)


def _encoding_hint(data: bytes, encoding: str) -> str:
    """Name the encoding a failed file was probably written in."""
    for candidate, label in (("utf-8", "UTF-8"), ("cp1251", "Russian Windows / 1C exports"),
                             ("cp1252", "Western European Windows exports")):
        if codecs.lookup(candidate).name == codecs.lookup(encoding).name:
            continue
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        non_ascii = [c for c in text[:200_000] if ord(c) > 127]
        if candidate == "cp1251" and (not non_ascii or
                                      sum("\u0400" <= c <= "\u04ff" for c in non_ascii) < 0.6 * len(non_ascii)):
            continue
        return (f"the file looks like {candidate} ({label}): pass encoding='{candidate}' "
                f"(command line: --encoding {candidate}).")
    return "pass the encoding the file was saved with, e.g. encoding='cp1251' or 'latin-1' (--encoding on the command line)."


def _decode(data: bytes, encoding: str, source: str) -> str:
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise WorkbenchError(f"unknown encoding {encoding!r}.", file=source,
                             hint="use a Python codec name such as 'utf-8', 'cp1251' or 'latin-1'.") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and codec == "utf-8":
        codec = "utf-16"  # Excel's 'Unicode text' export
    elif codec == "utf-8":
        codec = "utf-8-sig"
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start)
        raise WorkbenchError(
            f"the file is not valid {encoding} text (byte {exc.start} cannot be decoded).",
            file=source, row=row if row > 0 else None, hint=_encoding_hint(data, encoding),
        ) from None


def _sniff_separator(text: str) -> str:
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda s: counts[s])
    return best if counts[best] else ","


def _dedupe_header(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        name = name.strip() or f"Unnamed: {i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


def _read_csv_lenient(text: str, sep: str, source: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a CSV whose lines do not all have the header's number of fields.

    The fast C parser refuses such files; here each line with too many fields is
    kept (its surplus joined into the last cell) and flagged, so it can be
    quarantined instead of lost.
    """
    try:
        rows = list(csv.reader(_io.StringIO(text, newline=""), delimiter=sep))
    except csv.Error as exc:
        raise WorkbenchError(f"the file cannot be read as CSV ({plain_reason(exc)}).", file=source,
                             hint="check the quoting: a quote opened in a cell must be closed.") from None
    header = _dedupe_header(rows[0]) if rows else []
    width = len(header)
    data, wrong = [], np.zeros(max(len(rows) - 1, 0), dtype=bool)
    for i, r in enumerate(rows[1:]):
        if len(r) > width:
            wrong[i] = True
            r = r[: width - 1] + [sep.join(r[width - 1:])]
        data.append(r + [""] * (width - len(r)))
    frame = pd.DataFrame(data, columns=header, dtype="str")
    frame = frame.where(frame != "", np.nan)
    return frame, wrong


def _read_csv(path: Path, encoding: str) -> tuple[pd.DataFrame, np.ndarray]:
    source = str(path)
    data = read_bytes(path)
    head = data[:8192]
    if head.startswith(b"PK\x03\x04"):
        raise WorkbenchError("the file is a zip archive (an Excel workbook?), not a CSV.", file=source,
                             hint="if it is an Excel file, name it .xlsx; otherwise unzip it first.")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise WorkbenchError("the file is binary, not a CSV text file.", file=source,
                             hint="export the table as CSV, Excel (.xlsx), Parquet or XES.")
    text = _decode(data, encoding, source)
    if not text.strip():
        raise WorkbenchError("the file is empty.", file=source, hint="export the table again with its header and rows.")
    sep = _sniff_separator(text)
    try:
        frame = pd.read_csv(_io.StringIO(text), sep=sep, dtype="str", keep_default_na=False, na_values=[""],
                            skip_blank_lines=False, engine="c")
        # pandas renames a repeated header name ('amount' -> 'amount.1'); read_table says so.
        try:
            header = next(csv.reader(_io.StringIO(text, newline=""), delimiter=sep), [])
        except csv.Error:
            header = []
        if len(header) == frame.shape[1] and len(set(header)) < len(header):
            frame.columns = header
        return frame, np.zeros(len(frame), dtype=bool)
    except pd.errors.ParserError:
        return _read_csv_lenient(text, sep, source)
    except (pd.errors.EmptyDataError, ValueError, IndexError, OverflowError) as exc:
        raise WorkbenchError(f"the file cannot be read as CSV ({plain_reason(exc)}).", file=source,
                             hint="check that it is a CSV export with a header line.") from None


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WorkbenchError(f"the file cannot be read ({exc.strerror or exc}).", file=str(path),
                             hint="check the path and the file's permissions.") from None


def _read_excel(path: Path, sheet: str | int | None) -> pd.DataFrame:
    source = str(path)
    try:
        return pd.read_excel(path, sheet_name=0 if sheet is None else sheet, dtype=object, engine="openpyxl")
    except (ValueError, KeyError, IndexError) as exc:
        if sheet is not None and ("not found" in str(exc) or isinstance(exc, (KeyError, IndexError))):
            raise WorkbenchError(f"the workbook has no sheet {sheet!r}.", file=source,
                                 hint=f"the sheets are {sheet_names(path)}; pass one of them as sheet=.") from None
        problem = plain_reason(exc)
    except Exception as exc:  # openpyxl / zipfile raise many types on a damaged workbook
        problem = plain_reason(exc)
    raise WorkbenchError(f"the file cannot be read as an Excel workbook ({problem}).", file=source,
                         hint="open it in Excel and save it as .xlsx, or export the sheet as CSV.")


def sheet_names(path: Path) -> list[str]:
    try:
        return list(pd.ExcelFile(path, engine="openpyxl").sheet_names)
    except Exception:
        return []


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise WorkbenchError(f"the file cannot be read as Parquet ({plain_reason(exc)}).", file=str(path),
                             hint="write it again with pandas.DataFrame.to_parquet, or export CSV.") from None


#: pm4py's XES readers, fastest first: the Rust parser (rustxes, the ``fast-xes`` extra; 4-5
#: times faster than pm4py's own on a 250,000-event log), then pm4py's own, which reads what the
#: first refuses and text in other encodings.
XES_READERS = ("rustxes", "chunk_regex")


def _read_xes(path: Path, encoding: str) -> pd.DataFrame:
    import pm4py

    readers = XES_READERS if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else XES_READERS[1:]
    for variant in readers:
        try:
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")
                frame = pm4py.read_xes(str(path), variant=variant, encoding=encoding, show_progress_bar=False)
            if variant == readers[-1] or (isinstance(frame, pd.DataFrame) and len(frame)):
                break
            # the Rust parser returns an empty table for a file it cannot make sense of
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # lxml, gzip, pm4py's errors; the Rust parser's panics are BaseExceptions
            if variant != readers[-1]:
                continue  # not installed, or refused the file: pm4py's own reader tries
            raise WorkbenchError(f"the file cannot be read as XES ({plain_reason(exc)}).", file=str(path),
                                 hint="check that it is a complete XES export (for .xes.gz: a gzip of one).") from None
    if not isinstance(frame, pd.DataFrame):
        raise WorkbenchError("the XES file did not give a table of events.", file=str(path),
                             hint="export the log again as XES.")
    return frame


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".xes", ".xes.gz")):
        return "xes"
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".xlsx", ".xlsm"):
        return "excel"
    if suffix == ".xls":
        raise WorkbenchError("old Excel .xls files are not supported.", file=str(path),
                             hint="open it in Excel and save it as .xlsx, or export CSV.")
    if suffix in (".csv", ".txt", ".tsv", ".tab", ""):
        return "csv"
    head = read_bytes(path)[:512]
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "excel"
    if b"<log" in head or head.lstrip().startswith(b"<?xml"):
        return "xes"
    raise WorkbenchError(f"{path.suffix!r} files are not a format the workbench reads.", file=str(path),
                         hint="give a CSV, Excel (.xlsx), Parquet or XES (.xes, .xes.gz) file.")


def read_table(source: str | Path | pd.DataFrame, *, encoding: str = "utf-8",
               sheet: str | int | None = None) -> RawTable:
    """Read a file (CSV, Parquet, Excel, XES) or take a DataFrame, without checking any value.

    CSV cells are read as strings, separator (',', ';', tab, '|') sniffed from the
    header. Blank lines are skipped (and said so in a warning); data rows keep
    their 1-based row number in the file.

    Raises
    ------
    WorkbenchError
        Missing or unreadable file, unknown format, wrong encoding.
    """
    fmt = None
    if isinstance(source, pd.DataFrame):
        frame, name, wrong = source.reset_index(drop=True), "<DataFrame>", np.zeros(len(source), dtype=bool)
    elif is_database_url(source):
        frame, name = read_database(str(source)), hide_password(str(source))
        wrong = np.zeros(len(frame), dtype=bool)
    else:
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise WorkbenchError("the file does not exist.", file=name,
                                 hint=f"check the path (relative paths start at {Path.cwd()}).")
        if path.is_dir():
            raise WorkbenchError("this is a folder, not a file.", file=name, hint="give the path of the file.")
        fmt = _format_of(path)
        wrong = None
        if fmt == "csv":
            frame, wrong = _read_csv(path, encoding)
        elif fmt == "excel":
            frame = _read_excel(path, sheet)
        elif fmt == "parquet":
            frame = _read_parquet(path)
        else:
            frame = _read_xes(path, encoding)
        frame = frame.reset_index(drop=True)
        if wrong is None:
            wrong = np.zeros(len(frame), dtype=bool)
    names = [str(c).strip() for c in frame.columns]
    frame.columns = _dedupe_header([str(c) for c in frame.columns])
    source_row = np.arange(1, len(frame) + 1)
    warnings: list[str] = []
    if fmt == "excel" and sheet is None \
            and len(sheets := sheet_names(path)) > 1:
        warnings.append(f"the workbook has {len(sheets)} sheets ({', '.join(repr(s) for s in sheets[:6])}); the first, "
                        f"{sheets[0]!r}, was read. Pass sheet= (--sheet) to read another.")
    empty = frame.isna().all(axis=1).to_numpy() & ~wrong if len(frame.columns) else np.ones(len(frame), bool)
    if empty.any():
        warnings.append(f"{int(empty.sum()):,} empty rows were skipped (they hold no data).")
        frame, source_row, wrong = frame[~empty].reset_index(drop=True), source_row[~empty], wrong[~empty]
    flags = RowFlags(len(frame))
    flags.flag(wrong, "wrong_field_count", None)
    return RawTable(frame=frame, source=name, source_row=source_row, flags=flags, warnings=warnings, header=names)
