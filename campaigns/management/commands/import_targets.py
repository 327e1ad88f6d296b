"""python manage.py import_targets FILE --campaign SLUG [--dry-run] [--user USERNAME]"""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import translation

from audit.models import AuditEvent
from audit.services import audit_record
from campaigns import importing
from campaigns.models import Campaign


class Command(BaseCommand):
    help = (
        "Imports a campaign's targets from an XLSX or CSV file (one row per unit: unit_code, unit_name, vsi_target, "
        "hi_target, or the template's Vietnamese headers). Prints the preview; saves every row or none; exits "
        "non-zero on any problem."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="XLSX or CSV file")
        parser.add_argument("--campaign", required=True, help="the campaign's slug")
        parser.add_argument("--dry-run", action="store_true", help="show the preview, save nothing")
        parser.add_argument("--user", help="username recorded in the targets' history as who imported the file")
        parser.add_argument("--language", default="vi", choices=["vi", "en"], help="language of the messages")

    def handle(self, *args, file, campaign, dry_run, user, language, **options):
        translation.activate(language)
        if dry_run:
            self._dry_run(file, campaign)
            return
        # The campaign is found and locked in the import's own transaction: one query instead of two.
        with transaction.atomic():
            campaign_obj = self._campaign(campaign, lock=True)
            history_user, path, table = self._read(file, user)
            try:
                preview = importing.import_apply(
                    campaign=campaign_obj, table=table, user=history_user, file_name=path.name, campaign_locked=True
                )
            except importing.ImportInvalid as exc:
                self.stdout.write(importing.preview_as_text(exc.preview))
                raise CommandError("The file has problems; nothing was saved.") from exc
            # The command line leaves the same trail as the browser's import, committed with the targets (one
            # commit, one WAL flush, instead of two).
            audit_record(
                action=AuditEvent.Action.IMPORTED,
                user=history_user,
                obj=campaign_obj,
                province=campaign_obj.province,
                detail=f"import_targets {path.name}",
            )
        self.stdout.write(importing.preview_as_text(preview))
        self.stdout.write(self.style.SUCCESS("Imported."))

    def _campaign(self, slug, *, lock=False):
        campaigns = Campaign.objects.select_related("province")
        if lock:
            campaigns = campaigns.select_for_update(of=("self",))
        campaign_obj = campaigns.filter(slug=slug).first()
        if campaign_obj is None:
            raise CommandError(f"No campaign has the slug {slug!r}.")
        return campaign_obj

    def _dry_run(self, file, campaign):
        campaign_obj = self._campaign(campaign)
        _user, _path, table = self._read(file, None)
        preview = importing.build_preview(campaign_obj, table)
        self.stdout.write(importing.preview_as_text(preview))
        if not preview.is_valid:
            raise CommandError("The file has problems; nothing was saved.")
        self.stdout.write(self.style.SUCCESS("Dry run: nothing was saved."))

    def _read(self, file, user):
        history_user = None
        if user:
            history_user = get_user_model().objects.filter(username=user).first()
            if history_user is None:
                raise CommandError(f"No user is called {user!r}.")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file.")
        if path.stat().st_size > importing.max_file_bytes():
            raise CommandError(
                f"{file}: the file is too large ({path.stat().st_size // 1024} kB; "
                f"at most {importing.max_file_bytes() // 1024} kB)."
            )
        try:
            table = importing.read_table(path.read_bytes(), path.name)
        except importing.FileRejected as exc:
            raise CommandError(f"{file}: {exc.message}") from exc
        return history_user, path, table
