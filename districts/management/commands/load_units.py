"""Loads the official administrative units (fixtures/units_2024.json.gz) into the database.

Idempotent: units are found by their official code; missing ones are created, changed names, kinds and dates are
updated, and nothing is ever deleted (a unit that is no longer in the file stays, as campaigns may still use it).
"""

from __future__ import annotations

import datetime
import gzip
import json
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from districts.models import Commune, District, Province

DEFAULT_FILE = Path(settings.BASE_DIR) / "fixtures" / "units_2024.json.gz"


def _date(value):
    return datetime.date.fromisoformat(value) if value else None


def _sync(model, rows: list[dict], fields: list[str]) -> tuple[int, int]:
    """Creates the rows whose code is missing and updates those whose `fields` differ. Returns (created, updated)."""
    existing = {obj.code: obj for obj in model.objects.filter(code__in=[r["code"] for r in rows])}
    to_create, to_update = [], []
    for row in rows:
        obj = existing.get(row["code"])
        if obj is None:
            to_create.append(model(**row))
            continue
        changed = False
        for field in fields:
            if getattr(obj, field) != row[field]:
                setattr(obj, field, row[field])
                changed = True
        if changed:
            to_update.append(obj)
    model.objects.bulk_create(to_create, batch_size=2000)
    if to_update:
        model.objects.bulk_update(to_update, fields, batch_size=1000)
    return len(to_create), len(to_update)


@transaction.atomic
def units_load(*, path: Path = DEFAULT_FILE) -> dict[str, tuple[int, int]]:
    """Loads the data file; returns {"provinces"|"units"|"communes"|"merges": (created, updated)}."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    result = {}
    result["provinces"] = _sync(
        Province,
        [{"code": c, "name": n, "codename": cn, "kind": k} for c, n, cn, k in data["provinces"]],
        ["name", "codename", "kind"],
    )
    province_ids = dict(Province.objects.values_list("code", "id"))
    result["units"] = _sync(
        District,
        [
            {
                "code": code,
                "province_id": province_ids[pcode],
                "name": name,
                "kind": kind,
                "valid_from": _date(valid_from),
                "ceased_on": _date(ceased_on),
            }
            for code, pcode, name, kind, valid_from, ceased_on, _merged in data["units"]
        ],
        ["province_id", "name", "kind", "valid_from", "ceased_on"],
    )
    unit_ids = dict(District.objects.values_list("code", "id"))
    # Merges point at units of the same file, so they are set once every unit exists.
    merges = {code: unit_ids[merged] for code, *_rest, merged in data["units"] if merged}
    to_merge = [u for u in District.objects.filter(code__in=merges) if u.merged_into_id != merges[u.code]]
    for unit in to_merge:
        unit.merged_into_id = merges[unit.code]
    District.objects.bulk_update(to_merge, ["merged_into_id"])
    result["merges"] = (0, len(to_merge))
    result["communes"] = _sync(
        Commune,
        [
            {"code": code, "district_id": unit_ids[ucode], "name": name, "kind": kind, "ceased_on": _date(ceased_on)}
            for code, ucode, name, kind, ceased_on in data["communes"]
        ],
        ["district_id", "name", "kind", "ceased_on"],
    )
    return result


class Command(BaseCommand):
    help = "Load the official provinces, district-level units (with provincial offices) and communes of 2023-2024."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="Data file (default: %(default)s).")
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when administrative units are already loaded."
        )

    def handle(self, *args, file: Path, if_empty: bool, **options):
        if if_empty and Province.objects.exists() and Commune.objects.exists():
            if options["verbosity"] > 1:
                self.stdout.write("Administrative units are already loaded; nothing to do.")
            return
        if not file.exists():
            raise CommandError(f"Data file not found: {file}")
        started = time.monotonic()
        result = units_load(path=file)
        elapsed = time.monotonic() - started
        parts = ", ".join(
            f"{name}: {created} created, {updated} updated" for name, (created, updated) in result.items()
        )
        self.stdout.write(self.style.SUCCESS(f"Loaded administrative units in {elapsed:.1f} s ({parts})."))
