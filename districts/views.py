from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from districts.scoping import ROLE_ADMIN, ROLE_MANAGER, ROLE_STAFF, role_of

# Where each role's daily work starts; the first page that exists wins.
ROLE_HOME = {
    ROLE_STAFF: ["participants:enrollment_create"],
    ROLE_MANAGER: ["reports:province_overview"],
    ROLE_ADMIN: ["campaigns:campaign_list", "reports:province_overview"],
}


def _first_url(names):
    for name in names:
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return None


@login_required
def home(request):
    role = role_of(request.user)
    target = _first_url(ROLE_HOME.get(role, []))
    if target:
        return redirect(target)
    links = [{"url": reverse("admin:index"), "label": _("Administration")}] if request.user.is_staff else []
    return render(request, "districts/home.html", {"links": links})
