"""Screenshots of a report's pages at 1400 px, for a reviewer to look at (``make report-screenshots``).

Usage: ``python tools/report_screenshots.py [REPORT] [--width 1400]``. REPORT is a report folder
(``reports/2026Q4``) or a folder of reports, of which the newest is taken (default ``reports``).
Writes ``<report>/screenshots/<page>.png`` (whole page) and prints, per page, its width and whether
it scrolls sideways. Needs Chromium (Debian's ``chromium``) and the test extra's playwright.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def newest_report(folder: Path) -> Path:
    """``folder`` itself if it holds an index.html, else its newest sub-folder that does."""
    if (folder / "index.html").exists():
        return folder
    found = sorted((p.parent for p in folder.glob("*/index.html")), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"{folder}: no report here (no index.html); run `make report` first.")
    return found[-1]


def screenshots(report: Path, width: int = 1400) -> dict[str, int]:
    """Write a whole-page screenshot of every page of ``report``; returns each page's scroll width."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    out = report / "screenshots"
    out.mkdir(exist_ok=True)
    widths = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": width, "height": 1000})
        for html in sorted(report.glob("*.html")):
            page.goto(html.as_uri())
            page.wait_for_load_state("load")
            widths[html.stem] = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(out / f"{html.stem}.png"), full_page=True)
        browser.close()
    return widths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", nargs="?", default="reports", type=Path)
    ap.add_argument("--width", type=int, default=1400)
    args = ap.parse_args(argv)
    report = newest_report(args.report.resolve())  # file URIs need an absolute path
    for name, scroll in screenshots(report, args.width).items():
        print(f"{report / 'screenshots' / name}.png  width {scroll} px"
              f"{'  SCROLLS SIDEWAYS' if scroll > args.width else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
