import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from campaigns.models import Campaign
from reports import engine


class Command(BaseCommand):
    help = "Recomputes the attainment snapshot of every campaign, or of one (--campaign SLUG), as of a date."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", metavar="SLUG", help="only this campaign")
        parser.add_argument("--as-of", metavar="YYYY-MM-DD", help="the as-of date (default: today, or the end)")

    def handle(self, *args, campaign=None, as_of=None, **options):
        as_of_date = None
        if as_of:
            try:
                as_of_date = datetime.date.fromisoformat(as_of)
            except ValueError as exc:
                raise CommandError(_("The as-of date must be written YYYY-MM-DD, for example 2024-03-31.")) from exc
        campaigns = None
        if campaign:
            found = Campaign.objects.filter(slug=campaign).first()
            if found is None:
                raise CommandError(_("There is no campaign with the short name %(slug)s.") % {"slug": campaign})
            campaigns = [found]
        try:
            run = engine.snapshot_rebuild(campaigns=campaigns, as_of=as_of_date)
        except Exception as exc:
            raise CommandError(
                _("The recompute failed; the previous figures are kept. %(error)s") % {"error": exc}
            ) from exc
        self.stdout.write(
            _("Done in %(seconds).2f s: %(totals)d figure rows, %(daily)d daily rows (run %(run)d).")
            % {"seconds": run.duration_seconds, "totals": run.total_rows, "daily": run.daily_rows, "run": run.pk}
        )
