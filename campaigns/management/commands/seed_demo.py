"""Demo data for Bắc Giang on top of the reference data: campaigns, targets, collection organisations, synthetic
participants and enrollments, and one user per role. Deterministic for a given --seed (on a given day: one campaign
is placed around today)."""

import time

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from campaigns.demo import DEMO_USERS, PROVINCE_CODE, demo_digest, demo_present, demo_reset, demo_seed
from campaigns.models import Campaign
from districts.models import Province
from participants.models import Enrollment


class Command(BaseCommand):
    help = "Create demo campaigns, targets, organisations, participants, enrollments and users in Bắc Giang (24)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=2024, help="Random seed (default: %(default)s).")
        parser.add_argument("--reset", action="store_true", help="Delete the existing demo data first.")
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing (and succeed) when campaigns or enrollments exist."
        )
        parser.add_argument(
            "--scale", type=float, default=1.0, help="Multiply the number of participants (default: %(default)s)."
        )
        parser.add_argument(
            "--no-recompute",
            action="store_true",
            help="Do not recompute the attainment snapshots after seeding.",
        )

    def handle(self, *args, seed, reset, if_empty, scale, no_recompute, **options):
        if if_empty and (demo_present() or Campaign.objects.exists() or Enrollment.objects.exists()):
            if options["verbosity"] > 1:
                self.stdout.write("Campaigns or enrollments already exist; not seeding demo data.")
            return
        if not 0 < scale <= 5:
            raise CommandError("--scale must be greater than 0 and at most 5.")
        if demo_present() and not reset:
            raise CommandError(
                f"Demo data (or other data of province {PROVINCE_CODE}) is already in this database. "
                "Run `manage.py seed_demo --reset` to delete it and seed again."
            )
        started = time.monotonic()
        if not Province.objects.filter(code=PROVINCE_CODE).exists():
            call_command("load_units", stdout=self.stdout, verbosity=options["verbosity"])
        if reset:
            deleted = demo_reset()
            self.stdout.write("Deleted: " + ", ".join(f"{n} {name}" for name, n in deleted.items()) + ".")
        counts = demo_seed(seed=seed, scale=scale)
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data seeded in {elapsed:.1f} s (seed {seed}): "
                + ", ".join(f"{n} {name}" for name, n in counts.items())
                + "."
            )
        )
        if options["verbosity"] > 1:
            self.stdout.write(f"Digest: {demo_digest()}")
        if not no_recompute:
            self._recompute()
        self.stdout.write(
            "Demo logins (demo only): "
            + ", ".join(f"{u.username} / {u.password} ({u.role})" for u in DEMO_USERS)
            + ". `manage.py demo_logins` lists them again."
        )

    def _recompute(self):
        """Fills the dashboards' snapshots at once (one full run, rather than one refresh per day touched)."""
        if "recompute_attainment" not in get_commands():
            return
        try:
            call_command("recompute_attainment", stdout=self.stdout)
        except CommandError as exc:
            # The demo data is saved; the nightly run or an admin's recompute will fill the dashboards.
            self.stderr.write(
                f"Warning: the attainment recompute failed ({exc}); run `manage.py recompute_attainment`."
            )
