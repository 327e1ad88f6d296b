"""Prints the demo users' logins (demo passwords only; `make run` shows them before starting the server)."""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from campaigns.demo import DEMO_USERS
from districts.scoping import role_of


class Command(BaseCommand):
    help = "Print the demo users: username, password, role and scope."

    def handle(self, *args, **options):
        users = {
            u.username: u
            for u in User.objects.filter(username__in=[d.username for d in DEMO_USERS]).select_related(
                "scope__province", "scope__unit"
            )
        }
        if not users:
            self.stdout.write(
                "No demo users yet: run `python manage.py seed_demo` (or `make run` on an empty database)."
            )
            return
        self.stdout.write("Demo logins (demo data only, never use these passwords elsewhere):")
        self.stdout.write(f"  {'username':<12} {'password':<22} {'role':<8} scope")
        for demo in DEMO_USERS:
            user = users.get(demo.username)
            if user is None:
                continue
            scope = getattr(user, "scope", None)
            where = (scope.unit or scope.province).name if scope else "-"
            # The password printed is the documented one; say so if someone changed it since.
            password = demo.password if user.check_password(demo.password) else "(changed)"
            self.stdout.write(f"  {demo.username:<12} {password:<22} {role_of(user) or '-':<8} {where}")
