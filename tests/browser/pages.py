"""Checks every main page gets in the browser tests: what axe-core finds, nothing cut off sideways, no English left
on a Vietnamese page, and a screenshot."""

from __future__ import annotations

import re

# Words of the interface that would betray an untranslated string on a Vietnamese page. The test data's names are
# Vietnamese, so none of these can come from them.
ENGLISH = re.compile(
    r"\b(the|and|of|Save|Saved|Cancel|Enrollments?|Campaigns?|Targets?|Filter|Export|Unit|Units|Scheme|Sign out|"
    r"Attained|Enrolled|Progress|Status|Recorded|Upload|Download|Rank|Remaining|Required|Commune|Kind|"
    r"Full name|Date|Months|Total|Dashboard|Overview|Records?|Preview|Confirm|Import|Search|Clear|Next|Previous)\b"
)


def english_on_page(page) -> list[str]:
    """English interface words in the visible text (charts' SVG included), with a little context each."""
    text = page.evaluate(
        "() => [document.body.innerText, ...Array.from(document.querySelectorAll('svg text'), t => t.textContent)]"
        ".join('\\n')"
    )
    found = []
    for match in ENGLISH.finditer(text):
        start, end = max(0, match.start() - 30), min(len(text), match.end() + 30)
        found.append(text[start:end].replace("\n", " | "))
    return found


def check_page(session, label, *, axe=True):
    """Screenshot, then the page's accessibility, width and language; returns a list of problems (empty is good)."""
    page = session.page
    page.wait_for_load_state("networkidle")
    session.screenshot(label)
    problems = []
    if axe:
        problems += [f"{label}: axe {v}" for v in session.axe_violations()]
    overflow = session.overflow()
    if overflow > 1:
        problems.append(f"{label}: the page is {overflow}px wider than the window")
    if session.language == "vi":
        problems += [f"{label}: English on a Vietnamese page: …{t}…" for t in english_on_page(page)]
    return problems
