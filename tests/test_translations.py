"""Every message has a Vietnamese translation, and the committed .mo files are compiled from the .po files."""

import gettext
from pathlib import Path

import polib
import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
PO_FILES = sorted(p for p in ROOT.glob("**/locale/vi/LC_MESSAGES/django.po") if ".venv" not in p.parts)


def test_there_are_vietnamese_catalogues():
    assert PO_FILES


@pytest.mark.parametrize("po_path", PO_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_message_is_translated_into_vietnamese(po_path):
    po = polib.pofile(str(po_path))
    untranslated = [e.msgid for e in po if not e.obsolete and (not e.translated() or "fuzzy" in e.flags)]
    assert untranslated == []


@pytest.mark.parametrize("po_path", PO_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_compiled_catalogue_matches_its_source(po_path):
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), "run compilemessages and commit the .mo file"
    with mo_path.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    po = polib.pofile(str(po_path))
    for entry in po:
        if entry.obsolete or entry.msgid_plural or not entry.translated():
            continue
        key = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        assert compiled._catalog.get(key) == entry.msgstr, f"{entry.msgid!r} is stale in {mo_path.name}"
