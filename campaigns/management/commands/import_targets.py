"""python manage.py import_targets FILE [FILE ...] --campaign SLUG [--campaign SLUG ...] [--dry-run] [--user USERNAME]

One file per campaign: the first file goes to the first --campaign, the second to the second, and so on. Several
files are previewed and imported together, all or nothing (a national office's 63 province files in one go)."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from audit.models import AuditEvent
from audit.services import audit_record_many
from campaigns import importing
from campaigns.models import Campaign


class Command(BaseCommand):
    help = (
        "Imports campaigns' targets from XLSX or CSV files (one row per unit: unit_code, unit_name, vsi_target, "
        "hi_target, or the template's Vietnamese headers), one file per campaign, given in the same order as the "
        "--campaign options. Prints the preview; saves every row of every file or none; exits non-zero on any "
        "problem."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Files and --campaign options may alternate (FILE --campaign SLUG FILE --campaign SLUG …), each file
        # followed by its campaign, as well as all the files first.
        parser.parse_args = parser.parse_intermixed_args
        return parser

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="+", help="XLSX or CSV file(s), one per campaign")
        parser.add_argument(
            "--campaign",
            action="append",
            required=True,
            help="the campaign's slug; once per file, in the files' order",
        )
        parser.add_argument("--dry-run", action="store_true", help="show the preview, save nothing")
        parser.add_argument("--user", help="username recorded in the targets' history as who imported the file")
        parser.add_argument("--language", default="vi", choices=["vi", "en"], help="language of the messages")

    def handle(self, *args, file, campaign, dry_run, user, language, **options):
        translation.activate(language)
        # call_command(..., campaign=SLUG) hands the option over as it was given, a single string.
        files = [file] if isinstance(file, str) else list(file)
        slugs = [campaign] if isinstance(campaign, str) else list(campaign)
        if len(files) != len(slugs):
            raise CommandError(
                _("Give one --campaign per file, in the same order: %(files)d file(s), %(campaigns)d campaign(s).")
                % {"files": len(files), "campaigns": len(slugs)}
            )
        twice = sorted({slug for slug in slugs if slugs.count(slug) > 1})
        if twice:
            raise CommandError(
                _("The campaign %(slug)s is given more than once; give one file per campaign.") % {"slug": twice[0]}
            )
        if dry_run:
            self._dry_run(files, slugs)
            return
        # The campaigns are found and locked in the import's own transaction: one query for all of them.
        with transaction.atomic():
            campaigns = self._campaigns(slugs, lock=True)
            history_user = self._user(user)
            batch = self._read(files, campaigns)
            try:
                previews = importing.import_apply_many(files=batch, user=history_user, campaigns_locked=True)
            except importing.BatchInvalid as exc:
                self.stdout.write(self._text(batch, exc.previews))
                raise CommandError("The file has problems; nothing was saved.") from exc
            # The command line leaves the same trail as the browser's import, one event per campaign (each in its
            # province's trail), committed with the targets: one commit, one WAL flush.
            audit_record_many(
                action=AuditEvent.Action.IMPORTED,
                user=history_user,
                events=[(item.campaign, item.campaign.province, f"import_targets {item.file_name}") for item in batch],
            )
        self.stdout.write(self._text(batch, previews))
        self.stdout.write(self.style.SUCCESS("Imported."))

    def _campaigns(self, slugs, *, lock=False) -> list[Campaign]:
        """The campaigns in the order of `slugs`, in one query (locked in pk order, as every import locks them)."""
        campaigns = Campaign.objects.select_related("province").filter(slug__in=slugs)
        if lock:
            campaigns = campaigns.select_for_update(of=("self",)).order_by("pk")
        by_slug = {c.slug: c for c in campaigns}
        for slug in slugs:
            if slug not in by_slug:
                raise CommandError(f"No campaign has the slug {slug!r}.")
        return [by_slug[slug] for slug in slugs]

    def _dry_run(self, files, slugs):
        campaigns = self._campaigns(slugs)
        batch = self._read(files, campaigns)
        previews = importing.build_previews(batch)
        self.stdout.write(self._text(batch, previews))
        if not all(p.is_valid for p in previews):
            raise CommandError("The file has problems; nothing was saved.")
        self.stdout.write(self.style.SUCCESS("Dry run: nothing was saved."))

    def _text(self, batch, previews) -> str:
        if len(batch) == 1:
            return importing.preview_as_text(previews[0])
        return importing.previews_as_text(batch, previews)

    def _user(self, user):
        if not user:
            return None
        history_user = get_user_model().objects.filter(username=user).first()
        if history_user is None:
            raise CommandError(f"No user is called {user!r}.")
        return history_user

    def _read(self, files, campaigns) -> list[importing.CampaignFile]:
        batch = []
        for file, campaign_obj in zip(files, campaigns, strict=True):
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
            batch.append(importing.CampaignFile(campaign=campaign_obj, table=table, file_name=path.name))
        return batch
