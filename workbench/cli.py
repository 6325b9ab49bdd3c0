"""The ``workbench`` command: check an export, make demo data, write the quarterly report."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .errors import WorkbenchError

INPUT_KINDS = ("auto", "events", "stage_history", "opportunities", "reps", "quotas")


def _check(args: argparse.Namespace) -> int:
    from .audit import parse_lookups
    from .check import check_file
    from .io import parse_mapping

    report, quarantine_path = check_file(
        args.path,
        kind=args.kind,
        mapping=parse_mapping(args.mapping) if args.mapping else None,
        dayfirst=args.dayfirst,
        timezone=args.timezone,
        encoding=args.encoding,
        sheet=args.sheet,
        lifecycle=args.lifecycle,
        after_close=args.after_close,
        profile=args.profile,
        log=args.log,
        lookups=parse_lookups(args.lookup),
    )
    print(report)
    if quarantine_path is not None:
        print(f"\nQuarantined rows written to {quarantine_path}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from .io import parse_mapping, read_event_log

    result = read_event_log(args.log, kind=args.kind, mapping=parse_mapping(args.mapping) if args.mapping else None,
                            dayfirst=args.dayfirst, timezone=args.timezone, encoding=args.encoding, sheet=args.sheet,
                            lifecycle=args.lifecycle, profile=args.profile)
    print(result.profile.to_yaml(), end="")
    print(result.profile_note, file=sys.stderr)
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from .synth import write_demo_data

    size: str | int = int(args.size) if args.size.isdigit() else args.size
    paths = write_demo_data(args.out, seed=args.seed, size=size, time_scale=args.time_scale)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .audit import parse_lookups
    from .report import build_report

    index = build_report(
        log=args.log,
        quarter=args.quarter,
        as_of=args.as_of,
        quotas=args.quotas,
        reps=args.reps,
        profile=args.profile,
        mapping=args.mapping,
        kind=args.kind,
        encoding=args.encoding,
        dayfirst=args.dayfirst,
        timezone=args.timezone,
        sheet=args.sheet,
        lifecycle=args.lifecycle,
        after_close=args.after_close,
        anonymize=args.anonymize,
        currency=args.currency,
        lookups=parse_lookups(args.lookup),
        costs=args.costs,
        team=args.team,
        region=args.region,
        seed=args.seed,
        out=args.out,
        timeout=args.timeout,
        jobs=args.jobs,
    )
    print(f"Report written to {index}")
    return 0


def _reading_options(parser: argparse.ArgumentParser) -> None:
    """How an input is read: the options check, profile and report share."""
    parser.add_argument("--mapping", help="'case_id=Opportunity ID,activity=Stage' or a JSON/YAML file")
    parser.add_argument("--profile", help="'ppvvc', 'salesforce' or a profile YAML/JSON file (default: the "
                                          "shipped profile that fits the log, else one derived from it)")
    parser.add_argument("--dayfirst", action="store_true", help="read 05/03/2026 as 5 March")
    parser.add_argument("--timezone", default="UTC", help="timezone of timestamps written without one")
    parser.add_argument("--encoding", default="utf-8", help="text encoding of CSV files, e.g. cp1251")
    parser.add_argument("--sheet", help="Excel sheet to read (default the first)")
    parser.add_argument("--lifecycle", choices=("complete", "all"), default="complete",
                        help="with lifecycle transitions: analyse complete events only, or all")
    parser.add_argument("--after-close", choices=("auto", "set_aside", "keep"), default="auto",
                        help="events after a case's close: as the profile says, set aside, or keep")


def _lookup_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lookup", action="append", metavar="COLUMN=FILE",
                        help="a master table the log's COLUMN must match (its column of that name, else its "
                             "first), e.g. --lookup product=products.csv; repeat for several")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``workbench`` command."""
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate an input file and write its quarantine table")
    check.add_argument("path", help="event log, stage history, opportunity table, reps or quotas file")
    check.add_argument("--kind", choices=INPUT_KINDS, default="auto")
    _reading_options(check)
    check.add_argument("--log", help="the event log, to validate reps or quotas against")
    _lookup_option(check)
    check.set_defaults(func=_check)

    profile = sub.add_parser("profile", help="write the process profile that reads a log (derived when no "
                                             "shipped one fits), as YAML to edit")
    profile.add_argument("--log", required=True, help="event log (CSV, Parquet, Excel, XES)")
    profile.add_argument("--kind", choices=INPUT_KINDS[:4], default="auto")
    _reading_options(profile)
    profile.set_defaults(func=_profile)

    demo = sub.add_parser("demo-data", help="generate the demo CRM event log, reps and quotas")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--out", type=Path, default=Path("data/demo"))
    demo.add_argument("--size", default="default", help="tiny, small, default, 1m, 10m or a number of events")
    demo.add_argument("--time-scale", type=float, default=1.0, help="multiplies every duration")
    demo.set_defaults(func=_demo_data)

    report = sub.add_parser("report", help="run the notebooks and write the quarterly report")
    report.add_argument("--log", required=True, help="event log (CSV, Parquet, Excel, XES)")
    report.add_argument("--quarter", help="e.g. 2026Q3 (default: the quarter of the as-of date)")
    report.add_argument("--as-of", help="forecast date inside the quarter (default: the last event)")
    report.add_argument("--quotas")
    report.add_argument("--reps")
    report.add_argument("--costs", help="costs of selling: team, region or rep, quarter, cost (for the "
                                        "customer acquisition cost)")
    _lookup_option(report)
    report.add_argument("--kind", choices=INPUT_KINDS[:4], default="auto")
    _reading_options(report)
    report.add_argument("--team", help="report on this team only")
    report.add_argument("--region", help="report on this region only")
    report.add_argument("--anonymize", action="store_true", help="replace names by stable pseudonyms")
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--currency", default="", help="symbol written before money on the pages, e.g. $ or €")
    report.add_argument("--out", type=Path, default=Path("reports"))
    report.add_argument("--timeout", type=int, default=600, help="seconds allowed per notebook cell")
    report.add_argument("--jobs", type=int, help="notebooks run at a time (default: 2 for logs under two "
                                                 "million events on two cores or more, else 1)")
    report.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 on a problem with the user's input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except WorkbenchError as exc:
        print(f"workbench {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM during a report: stopped, and cleaned up
        signum = getattr(exc, "signum", signal.SIGINT)
        done = " Nothing was written; a previous report is as it was." if args.command == "report" else ""
        print(f"workbench {args.command}: stopped ({signal.Signals(signum).name}).{done}", file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
