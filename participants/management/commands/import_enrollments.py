"""python manage.py import_enrollments FILE [--dry-run] [--unit CODE] [--row-by-row]

The same reader, checks and service as the browser's upload. Each enrollment's unit is its commune's unit;
--unit CODE additionally refuses rows whose commune is in another unit (an officer importing their own list).
Exit status 1 when the file or any row is wrong; then nothing is saved.

On PostgreSQL the list is streamed and checked set-based (participants.bulk_import, lists of a million rows);
--row-by-row (and SQLite) use the row path, which holds the list in memory and is bounded by MAX_IMPORT_ROWS.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.models import AuditEvent
from audit.services import audit_record
from districts.models import District
from participants import bulk_import, importing


class Command(BaseCommand):
    help = "Imports a CSV or XLSX list of enrollments (all rows or none); --dry-run only checks."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="Check and report; save nothing.")
        parser.add_argument("--unit", help="Code of the unit the list belongs to; communes of other units are refused.")
        parser.add_argument(
            "--row-by-row", action="store_true", help="Use the row path even on PostgreSQL (small lists)."
        )

    def handle(self, *args, file, dry_run=False, unit=None, row_by_row=False, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        bulk = bulk_import.available() and not row_by_row
        limit = settings.MAX_BULK_IMPORT_BYTES if bulk else settings.MAX_UPLOAD_BYTES
        if path.stat().st_size > limit:
            raise CommandError(f"The file is too large ({path.stat().st_size} bytes); the limit is {limit}.")
        unit_obj = None
        if unit:
            unit_obj = District.objects.filter(code=unit).first()
            if unit_obj is None:
                raise CommandError(f"No unit with code {unit}.")
        progress = self._progress
        try:
            if bulk:
                plan = self._bulk(path, unit_obj, dry_run, progress)
            else:
                plan = self._rows(path, unit_obj, dry_run, progress)
        except importing.ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        if not dry_run:
            # The command line leaves the same trail as the browser's upload (no user: the operator's shell).
            audit_record(
                action=AuditEvent.Action.IMPORTED,
                province=unit_obj.province if unit_obj else None,
                detail=f"import_enrollments {path.name}: "
                + ("rejected, nothing saved" if plan.errors else f"{plan.counts()['create']} created"),
            )
        self._report(plan)
        counts = plan.counts()
        if plan.errors:
            shown = "" if len(plan.errors) == counts["error"] else f" (the first {len(plan.errors)} listed)"
            raise CommandError(f"{counts['error']} row(s) with errors{shown}; nothing was saved.")
        verb = "would create" if dry_run else "created"
        self.stdout.write(
            self.style.SUCCESS(
                f"{counts['rows']} rows: {verb} {counts['create']}, already recorded {counts['duplicate']}."
            )
        )

    def _progress(self, done, total):
        if total > 1000 or done >= 100_000:
            self.stderr.write(f"{done}/{total}" if total else f"{done} rows read")

    def _bulk(self, path, unit_obj, dry_run, progress):
        with path.open("rb") as stream:
            try:
                return bulk_import.bulk_import(
                    name=path.name, stream=stream, unit=unit_obj, commit=not dry_run, progress=progress
                )
            except bulk_import.BulkRejected as exc:
                return exc.plan

    def _rows(self, path, unit_obj, dry_run, progress):
        rows = importing.read_table(name=path.name, data=path.read_bytes())
        if dry_run:
            return importing.import_plan(rows=rows, unit=unit_obj)
        try:
            return importing.import_apply(rows=rows, unit=unit_obj, progress=progress)
        except importing.ImportRejected as exc:
            return exc.plan

    def _report(self, plan):
        for row in plan.errors:
            for column, messages in row.errors.items():
                for message in messages:
                    self.stderr.write(f"row {row.number}, {column}: {message}")
        for row in plan.duplicates:
            self.stdout.write(f"row {row.number}: {row.note}")
