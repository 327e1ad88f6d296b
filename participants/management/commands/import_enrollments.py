"""python manage.py import_enrollments FILE [--dry-run] [--unit CODE]

The same reader, checks and service as the browser's upload. Each enrollment's unit is its commune's unit;
--unit CODE additionally refuses rows whose commune is in another unit (an officer importing their own list).
Exit status 1 when the file or any row is wrong; then nothing is saved.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.models import AuditEvent
from audit.services import audit_record
from districts.models import District
from participants import importing


class Command(BaseCommand):
    help = "Imports a CSV or XLSX list of enrollments (all rows or none); --dry-run only checks."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="Check and report; save nothing.")
        parser.add_argument("--unit", help="Code of the unit the list belongs to; communes of other units are refused.")

    def handle(self, *args, file, dry_run=False, unit=None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        if path.stat().st_size > settings.MAX_UPLOAD_BYTES:
            raise CommandError(
                f"The file is too large ({path.stat().st_size} bytes); the limit is {settings.MAX_UPLOAD_BYTES}."
            )
        unit_obj = None
        if unit:
            unit_obj = District.objects.filter(code=unit).first()
            if unit_obj is None:
                raise CommandError(f"No unit with code {unit}.")
        try:
            rows = importing.read_table(name=path.name, data=path.read_bytes())
        except importing.ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        if dry_run:
            plan = importing.import_plan(rows=rows, unit=unit_obj)
        else:
            try:
                plan = importing.import_apply(
                    rows=rows,
                    unit=unit_obj,
                    progress=lambda done, total: self.stderr.write(f"{done}/{total}") if total > 1000 else None,
                )
            except importing.ImportRejected as exc:
                plan = exc.plan
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
            raise CommandError(f"{counts['error']} row(s) with errors; nothing was saved.")
        verb = "would create" if dry_run else "created"
        self.stdout.write(
            self.style.SUCCESS(
                f"{counts['rows']} rows: {verb} {counts['create']}, already recorded {counts['duplicate']}."
            )
        )

    def _report(self, plan):
        for row in plan.errors:
            for column, messages in row.errors.items():
                for message in messages:
                    self.stderr.write(f"row {row.number}, {column}: {message}")
        for row in plan.duplicates:
            self.stdout.write(f"row {row.number}: {row.note}")
