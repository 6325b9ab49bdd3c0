"""Open a report's pages in headless Chromium at 1400 px, as a sales manager would, and say what they show."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

WIDTH = 1400
#: Text no page may show outside the glossary: scientific notation, Python's noise, the demo's words.
NOISE = {"scientific notation": r"(?<![\w.])\d(?:\.\d+)?e[+-]\d+\b", "Traceback": r"Traceback",
         "Warning": r"Warning\b", "seed": r"\bseed", "nan": r"\bnan\b"}

needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None,
                                    reason="Debian's chromium is not installed (CI installs it)")


def launch(pw):
    return pw.chromium.launch(executable_path=shutil.which("chromium"), args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def inspect_report(folder: Path) -> dict[str, dict]:
    """Each page of ``folder``: scroll width, images (and whether each loaded), console errors, text."""
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    pages = {}
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        for path in sorted(folder.glob("*.html")):
            errors: list[str] = []

            def on_console(m, errors=errors):
                if m.type == "error":
                    errors.append(m.text)

            def on_error(e, errors=errors):
                errors.append(str(e))

            page.on("console", on_console)
            page.on("pageerror", on_error)
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            pages[path.stem] = {
                "scroll_width": page.evaluate("document.documentElement.scrollWidth"),
                "images": page.evaluate("Array.from(document.images).map(i => "
                                        "[(i.getAttribute('src') || '').slice(0, 80), "
                                        "i.complete && i.naturalWidth > 0, "
                                        "i.clientWidth / Math.max(i.naturalWidth, 1)])"),
                "errors": list(errors),
                "text": page.evaluate("document.body.innerText"),
                "map_right": page.evaluate("Math.max(0, ...Array.from(document.querySelectorAll("
                                           "'.wb-map-levels svg')).map(s => s.getBoundingClientRect().right))"),
                "map_label_px": page.evaluate(
                    "Math.min(1e9, ...Array.from(document.querySelectorAll('.wb-level')).filter("
                    "d => d.style.display != 'none').flatMap(d => Array.from(d.querySelectorAll('svg text')))"
                    ".map(t => t.getBoundingClientRect().height).filter(h => h > 0))"),
            }
            page.remove_listener("console", on_console)
            page.remove_listener("pageerror", on_error)
        browser.close()
    return pages


def smallest_label_px(svg: Path, scale: float) -> float:
    """The height in pixels of the smallest label of an SVG figure shown at ``scale`` of its own size."""
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 3000, "height": 2000})
        page.goto(svg.as_uri())
        heights = page.evaluate("Array.from(document.querySelectorAll('text')).map(t => "
                                "t.getBoundingClientRect().height).filter(h => h > 0)")
        browser.close()
    return min(heights) * scale


def noise(text: str) -> dict[str, list[str]]:
    """What of :data:`NOISE` the text shows, with a few examples each."""
    found = {name: [m.group(0) for m in re.finditer(rf".{{0,30}}{pattern}.{{0,20}}", text, flags=re.I)][:3]
             for name, pattern in NOISE.items()}
    return {name: hits for name, hits in found.items() if hits}


def check_pages(pages: dict[str, dict], questions) -> None:
    """The acceptance of a report's pages at 1400 px (see the pages issue): asserts, naming the page."""
    assert "index" in pages and "glossary" in pages, sorted(pages)
    for name, p in pages.items():
        assert p["scroll_width"] <= WIDTH, (name, p["scroll_width"])
        assert all(ok for _, ok, _ in p["images"]), (name, p["images"])
        assert p["errors"] == [], (name, p["errors"])
        if name != "glossary":
            assert not noise(p["text"]), (name, noise(p["text"]))
    for question in questions:
        assert question in pages["index"]["text"], question
