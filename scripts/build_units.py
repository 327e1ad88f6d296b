"""Builds fixtures/units_2024.json.gz, the project's own reference data file of Vietnam's administrative units.

Build step only: the official (GSO) codes and names come from the JSON shipped by the PyPI package
`vietnam-provinces` (GPL-3.0), read here as a data file and never imported by the application. Version 0.5.0 holds
the 2023–2024 structure (63 provinces, 705 district-level units, 10,598 communes) that the 2024 campaigns ran in.
A later version (0.5.8, after the merges of late 2024) is compared with it to mark the units that ceased to exist.

    .venv/bin/python scripts/build_units.py                      # 0.5.0 from .venv, no ceased units
    .venv/bin/python scripts/build_units.py --later /tmp/vp058/nested-divisions.json

(`pip download --no-deps vietnam-provinces==0.5.8 -d /tmp/vp058` and unzip the wheel to get the later file.)

Output, compact JSON, gzip without a timestamp so that rebuilding from the same inputs gives the same bytes:
    {"source": ..., "provinces": [[code, name, codename, kind]],
     "units": [[code, province_code, name, kind, valid_from, ceased_on, merged_into_code]],
     "communes": [[code, unit_code, name, kind, ceased_on]]}
`ceased_on` is the first day the unit no longer existed (null = still exists); `valid_from` null = always existed.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = next(
    iter(sorted(ROOT.glob(".venv/lib/python3*/site-packages/vietnam_provinces/data/nested-divisions.json"))), None
)
DEFAULT_OUTPUT = ROOT / "fixtures" / "units_2024.json.gz"

# When the units that disappeared between the two versions ceased (the first day they no longer existed).
# Bắc Giang: Resolution 1191/NQ-UBTVQH15 of 28/09/2024 (district and commune arrangement 2023–2025, which merged
# Yên Dũng into Bắc Giang city); the resolutions of that batch were, to our knowledge, in force from 01/11/2024
# (not checked against the published text: change it here and rebuild if it says otherwise). The other provinces'
# resolutions of the same wave took effect between 01/11/2024 and 01/01/2025; without the exact day per province,
# 01/01/2025 is used: the unit is shown as existing for the whole of 2024, which is what a 2024 campaign needs.
CEASED_ON_BY_PROVINCE = {"24": "2024-11-01"}
CEASED_ON_DEFAULT = "2025-01-01"

DISTRICT_KINDS = (
    ("Thành phố ", "provincial_city"),
    ("Thị xã ", "town"),
    ("Quận ", "urban_district"),
    ("Huyện ", "district"),
)
COMMUNE_KINDS = (("Phường ", "ward"), ("Thị trấn ", "township"), ("Xã ", "commune"))


def kind_from_prefix(name: str, table) -> str:
    # A few official names capitalise the prefix differently ("Thành Phố Bắc Kạn").
    for prefix, kind in table:
        if name.lower().startswith(prefix.lower()):
            return kind
    raise ValueError(f"no known prefix in {name!r}")


def province_kind(name: str) -> str:
    return "city" if name.lower().startswith("thành phố ") else "province"


def office_name(province_name: str) -> str:
    """'Tỉnh Bắc Giang' -> 'Văn phòng BHXH tỉnh Bắc Giang'; 'Thành phố Hà Nội' -> '... thành phố Hà Nội'."""
    for prefix in ("Tỉnh ", "Thành phố "):
        if province_name.startswith(prefix):
            return f"Văn phòng BHXH {prefix.strip().lower()} {province_name[len(prefix) :]}"
    return f"Văn phòng BHXH {province_name}"


def office_code(province_code: str) -> str:
    # GSO district codes are all digits: a letter prefix can never clash with them.
    return f"VP{province_code}"


def build(source: list, later: list | None) -> dict:
    later_units = {}
    later_commune_unit = {}
    later_communes = set()
    if later is not None:
        for p in later:
            for d in p["districts"]:
                later_units[d["code"]] = d
                for w in d["wards"]:
                    later_communes.add(w["code"])
                    later_commune_unit[w["code"]] = d["code"]

    provinces, units, communes = [], [], []
    for p in sorted(source, key=lambda p: p["code"]):
        pcode = f"{p['code']:02d}"
        provinces.append([pcode, p["name"], p["codename"], province_kind(p["name"])])
        units.append([office_code(pcode), pcode, office_name(p["name"]), "provincial_office", None, None, None])
        for d in sorted(p["districts"], key=lambda d: d["code"]):
            dcode = f"{d['code']:03d}"
            ceased_on = merged_into = None
            if later is not None and d["code"] not in later_units:
                ceased_on = CEASED_ON_BY_PROVINCE.get(pcode, CEASED_ON_DEFAULT)
                # Merged into the unit that now holds most of its communes.
                votes = collections.Counter(
                    later_commune_unit[w["code"]] for w in d["wards"] if w["code"] in later_commune_unit
                )
                if votes:
                    merged_into = f"{votes.most_common(1)[0][0]:03d}"
            units.append(
                [dcode, pcode, d["name"], kind_from_prefix(d["name"], DISTRICT_KINDS), None, ceased_on, merged_into]
            )
            for w in sorted(d["wards"], key=lambda w: w["code"]):
                w_ceased = None
                if later is not None and w["code"] not in later_communes:
                    w_ceased = CEASED_ON_BY_PROVINCE.get(pcode, CEASED_ON_DEFAULT)
                communes.append(
                    [f"{w['code']:05d}", dcode, w["name"], kind_from_prefix(w["name"], COMMUNE_KINDS), w_ceased]
                )
    return {
        "source": "General Statistics Office codes via vietnam-provinces 0.5.0 (2023-2024); "
        "ceased units from a later version of the same data",
        "provinces": provinces,
        "units": units,
        "communes": communes,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="nested-divisions.json of 0.5.0")
    parser.add_argument("--later", type=Path, help="nested-divisions.json of a later version (e.g. 0.5.8)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.source is None or not args.source.exists():
        print("Cannot find nested-divisions.json of vietnam-provinces 0.5.0; pass --source.", file=sys.stderr)
        return 2
    source = json.loads(args.source.read_text(encoding="utf-8"))
    later = json.loads(args.later.read_text(encoding="utf-8")) if args.later else None
    data = build(source, later)
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(payload)
    ceased = [u for u in data["units"] if u[5]]
    print(
        f"{args.output}: {len(data['provinces'])} provinces, {len(data['units'])} units "
        f"({len(data['provinces'])} provincial offices, {len(ceased)} ceased), {len(data['communes'])} communes "
        f"({sum(1 for c in data['communes'] if c[4])} ceased)"
    )
    for u in ceased:
        print(f"  ceased {u[0]} {u[2]} on {u[5]} -> merged into {u[6]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
