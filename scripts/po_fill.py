"""Fill gettext .po files from a JSON dictionary {msgid: msgstr} and list what is still untranslated.

    python scripts/po_fill.py translations.json FILE.po [FILE.po ...]
    python scripts/po_fill.py --missing FILE.po [...]

Plural entries take a list [singular, plural] (Vietnamese has one form; the first is used). Fuzzy flags on filled
entries are removed. A developer tool (polib, dev extra); the compiled .mo files are committed, so a fresh machine
needs no gettext tools.
"""

import json
import sys

import polib


def main(argv):
    if argv[0] == "--missing":
        table, files = {}, argv[1:]
    else:
        table, files = json.load(open(argv[0], encoding="utf-8")), argv[1:]
    missing = 0
    for path in files:
        po = polib.pofile(path)
        po.metadata_is_fuzzy = False
        po.metadata["Content-Type"] = "text/plain; charset=UTF-8"
        for entry in po:
            if entry.obsolete:
                continue
            if entry.msgid in table:
                value = table[entry.msgid]
                if entry.msgid_plural:
                    forms = value if isinstance(value, list) else [value]
                    entry.msgstr_plural = {i: forms[min(i, len(forms) - 1)] for i in range(max(2, len(forms)))}
                else:
                    entry.msgstr = value if isinstance(value, str) else value[0]
                if "fuzzy" in entry.flags:
                    entry.flags.remove("fuzzy")
            translated = entry.msgstr_plural.get(0) if entry.msgid_plural else entry.msgstr
            if not translated or "fuzzy" in entry.flags:
                missing += 1
                print(f"MISSING {path}: {entry.msgid!r}")
        if table:
            po.save(path)
    return 1 if missing and argv[0] == "--missing" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
