"""The report's glossary: every statistical or process-mining word of a page, in a sales manager's words.

:func:`write_glossary` writes ``glossary.html`` beside the pages and
:func:`link_terms` links the first use of each term on a page to its entry, so
a reader meets "fitness" or "Brier score" with its meaning one click away.

Examples
--------
>>> link_terms("<p>The Brier score is 0.12.</p>")
'<p>The <a class="term" href="glossary.html#brier-score">Brier score</a> is 0.12.</p>'
"""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path

#: term -> (other ways the pages write it, what it means). The first spelling found on a page links.
TERMS: dict[str, tuple[tuple[str, ...], str]] = {
    "process map": ((), "A drawing of how deals really move: each box a stage with how many times deals reached "
                        "it, each arrow how many times deals went from one stage straight to the next. ↻ on a "
                        "box counts the follow-ups and repeats while deals were at that stage."),
    "variant": (("variants",), "The exact sequence of steps one deal took. Deals with the same steps in the same "
                               "order share a variant; few dominant variants mean a repeatable process."),
    "follow-up": (("follow-ups",), "A call, e-mail or meeting that keeps a deal warm without moving it to the next "
                                   "stage. It can happen at any stage, so the map counts it on the stage."),
    "reference process": ((), "The sales process the team is meant to follow: its stages in order, which may be "
                              "skipped, and what must be done before a deal is won."),
    "deviation": (("deviations",), "A step that leaves the reference process: a required stage skipped, a "
                                   "proposal before qualification, a step back, a long silence, work logged after "
                                   "the close, or a win without its milestones."),
    "conformance": ((), "How closely the recorded deals follow the reference process."),
    "fitness": ((), "A score from 0 to 1 of how well a deal's recorded steps match the reference process, step "
                    "by step (found by replaying the steps on the process model). A deal with one small deviation "
                    "still scores close to 1, so a high average fitness and a lower share of deals with no "
                    "deviation at all do not contradict each other."),
    "alignment": (("aligned",), "The closest way to walk through the reference process while following a deal's "
                                "steps: extra steps the deal took and steps of the process it skipped."),
    "set aside": ((), "Rows of the input that could not be used (no date, a date far outside the data, an event "
                      "after the deal closed). They are counted with the reason and written to a file for "
                      "checking; nothing is dropped silently."),
    "bottleneck": (("bottlenecks",), "A stage where deals of one team wait clearly longer than the same stage "
                                     "everywhere else."),
    "stalled deal": (("stalled deals", "stalled"), "An open deal that has been in its stage much longer than "
                                                   "deals usually take there."),
    "median": ((), "The middle value: half of the deals took less, half took more. Unlike the average, one very "
                   "slow deal does not move it."),
    "P10": (("P10-P90", "P50", "P90", "percentile"), "P10 is the value 10% of outcomes fall below, P90 the "
                                                     "value 90% fall below; P10 to P90 is the range in which the "
                                                     "outcome lands four times out of five."),
    "win rate": (("win rates",), "Deals won as a share of deals closed (won or lost) in the period."),
    "cycle time": ((), "Days from a deal's first step to its close."),
    "attainment": ((), "Bookings as a share of quota: 100% means the quota was met."),
    "pipeline coverage": (("coverage",), "Open pipeline divided by what is still needed to reach quota; a "
                                         "common rule of thumb asks for about three times."),
    "confidence interval": (("range from", "range to"), "The range in which the true difference lies with 95% "
                                                        "confidence, given how many deals there were."),
    "p-value": (("p-values", "adjusted p-value"), "How likely a difference this large would be by chance alone. "
                                                  "Small (below 0.05) means unlikely to be chance. The adjusted "
                                                  "p-value allows for testing many teams or stages at once."),
    "significant": (("significance",), "A difference too large to be chance, after allowing for the number of "
                                       "comparisons made."),
    "Benjamini-Hochberg": ((), "The rule used to adjust p-values when many comparisons are made at once, so that "
                               "few of the differences called significant are flukes."),
    "adjusted log odds": (("log odds",), "How much an attribute raises (above 0) or lowers (below 0) the odds "
                                         "of winning, with the other attributes held equal. 0.7 roughly doubles "
                                         "the odds."),
    "root cause": (("root causes",), "An attribute of deals (team, source, size) that goes with lower win rates "
                                     "or longer stages once the other attributes are taken into account."),
    "Gini": ((), "A number from 0 (every holder has the same share) to 1 (one holder has everything), used here "
                 "for how unevenly bookings are spread over reps or customers."),
    "sandbagging": ((), "Forecasting low on purpose so as to beat the forecast; seen when a team's deals keep "
                        "closing above what it committed."),
    "pipeline honesty": ((), "Whether a team's forecast calls agree with how its deals really close: optimistic "
                             "teams commit deals that are lost, sandbagging teams under-call deals that are won."),
    "net revenue retention": (("retention",), "Revenue this year from last year's customers, as a share of what "
                                              "they spent last year; above 100% means existing customers grow."),
    "acquisition cost": ((), "Sales and marketing spend divided by the new customers won in the period."),
    "cross-sell": ((), "A customer buying a second product line after the first."),
    "backtest": (("backtested",), "Running the forecast as of the same week of past quarters, using only what "
                                  "was known then, and comparing it with what happened."),
    "bias": ((), "Whether a forecast is on average too high (positive) or too low (negative)."),
    "run rate": ((), "A baseline forecast: what was booked so far this quarter, scaled up to the whole quarter."),
    "weighted pipeline": ((), "A baseline forecast a CRM computes: each open deal expected to close this quarter "
                              "counted at its stage's historical chance of winning."),
    "Brier score": (("Brier",), "How good a stated chance is: the average squared gap between the chance given "
                                "and what happened (1 or 0). 0 is perfect; lower is better. The base rate is "
                                "the score of always giving the historical hit frequency."),
    "base rate": ((), "How often it happened in the past, used as the simplest possible forecast of a chance."),
    "commit": ((), "Forecast category: deals likely enough to win that the rep commits to them."),
    "best case": ((), "Forecast category: deals that could win this quarter if things go well."),
    "exponential smoothing": (("ETS",), "A forecasting method that weighs recent quarters more than older ones."),
    "as of": (("as-of date",), "The date the report looks from: nothing recorded after it is used."),
}


def anchor(term: str) -> str:
    """The id of ``term``'s entry: 'Brier score' -> 'brier-score'."""
    return re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")


@functools.cache
def _pattern() -> tuple[re.Pattern, list[str]]:
    """One regular expression for every spelling, longest first, and the term each group stands for."""
    spellings = sorted(((s, t) for t, (others, _) in TERMS.items() for s in (t, *others)), key=lambda x: -len(x[0]))
    return re.compile("|".join(rf"(?<![\w-])(?P<g{i}>{re.escape(s)})(?![\w-])" for i, (s, _) in enumerate(spellings)),
                      re.IGNORECASE), [t for _, t in spellings]


_SKIP = {"a", "script", "style", "svg", "title", "head", "h1", "h2", "h3", "h4", "h5", "h6", "button", "label"}


def link_terms(page: str) -> str:
    """``page`` (HTML) with the first use of each glossary term linked to ``glossary.html``.

    Text inside links, headings, scripts, styles and drawings is left as it is.
    """
    pattern, owners = _pattern()
    linked: set[str] = set()
    out, inside = [], []
    for part in re.split(r"(<[^>]+>)", page):
        if part.startswith("<"):
            name = re.match(r"</?\s*([a-zA-Z0-9]+)", part)
            tag = name.group(1).lower() if name else ""
            if tag in _SKIP and not part.endswith("/>"):
                if part.startswith("</"):
                    if tag in inside:
                        del inside[len(inside) - 1 - inside[::-1].index(tag)]
                else:
                    inside.append(tag)
            out.append(part)
            continue
        if inside or not part.strip():
            out.append(part)
            continue

        def link(m: re.Match) -> str:
            term = owners[int(m.lastgroup[1:])]
            if term in linked:
                return m.group(0)
            linked.add(term)
            return f'<a class="term" href="glossary.html#{anchor(term)}">{m.group(0)}</a>'

        out.append(pattern.sub(link, part))
    return "".join(out)


def write_glossary(out_dir: str | Path) -> Path:
    """Write ``glossary.html`` into ``out_dir`` and return its path."""
    entries = "".join(f'<dt id="{anchor(t)}">{html.escape(t)}</dt><dd>{html.escape(text)}</dd>'
                      for t, (_, text) in sorted(TERMS.items(), key=lambda item: item[0].lower()))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Glossary</title>
<style>
body {{ font-family: sans-serif; max-width: 50em; margin: 2em auto; color: #222; line-height: 1.45; }}
dt {{ font-weight: bold; margin-top: 1em; }}
dd {{ margin: 0.2em 0 0 1.5em; }}
:target {{ background: #fff3c4; }}
</style></head><body>
<h1>Glossary</h1>
<p>The words of the report's pages, in plain terms. <a href="index.html">Back to the report</a>.</p>
<dl>{entries}</dl>
</body></html>
"""
    path = Path(out_dir) / "glossary.html"
    path.write_text(page, encoding="utf-8")
    return path
