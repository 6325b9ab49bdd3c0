"""The glossary: terms on a page link to an entry written for a sales manager, once per page."""

import re

from workbench import glossary


def test_the_first_use_of_a_term_links_to_its_entry_and_later_uses_stay_plain():
    page = "<p>Fitness is high. The fitness of deals in a process map.</p><p>A p-value of 0.01.</p>"
    out = glossary.link_terms(page)
    assert out.count('href="glossary.html#fitness"') == 1
    assert '<a class="term" href="glossary.html#fitness">Fitness</a> is high. The fitness of' in out
    assert 'href="glossary.html#process-map"' in out and 'href="glossary.html#p-value"' in out


def test_the_longest_spelling_wins_and_words_inside_words_are_left_alone():
    out = glossary.link_terms("<td>adjusted log odds</td><td>commitment</td><td>unmedianed</td>")
    assert 'href="glossary.html#adjusted-log-odds">adjusted log odds</a>' in out
    assert "commitment</td>" in out and "#commit" not in out and "#median" not in out


def test_links_headings_scripts_and_drawings_are_not_touched():
    page = ('<h2>Fitness</h2><a href="x.html">fitness</a><script>var fitness=1;</script>'
            '<svg><text>fitness</text></svg><p>fitness</p>')
    out = glossary.link_terms(page)
    assert out.count("glossary.html#fitness") == 1
    assert out.endswith('<p><a class="term" href="glossary.html#fitness">fitness</a></p>')
    assert out.startswith('<h2>Fitness</h2><a href="x.html">fitness</a><script>var fitness=1;</script>')


def test_every_term_has_an_entry_and_every_entry_is_plain(tmp_path):
    page = glossary.write_glossary(tmp_path).read_text(encoding="utf-8")
    ids = re.findall(r'<dt id="([^"]+)">', page)
    assert sorted(ids) == sorted(glossary.anchor(t) for t in glossary.TERMS) and len(set(ids)) == len(ids)
    for term, (_, text) in glossary.TERMS.items():
        assert text.endswith(".") and "_" not in text and "seed" not in text.lower(), term
    linked = glossary.link_terms(" ".join(f"<p>{t}</p>" for t in glossary.TERMS))
    assert set(re.findall(r"glossary.html#([\w-]+)", linked)) == set(ids)
