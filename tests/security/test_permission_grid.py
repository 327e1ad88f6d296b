"""Every door checked: each URL pattern the resolver knows, tried by each role, with GET and POST.

The GRID below maps every URL name to the arguments of its URL and the exact status each role gets, in this order:

    anonymous  staff  other_staff  manager  admin  foreign_admin

"staff" works in the unit that owns the objects (an enrollment, an upload, the unit's report); "other_staff" works
in another unit of the same province; "manager" and "admin" are province-wide; "foreign_admin" is the admin of
another province. A status is a number, or L for a redirect to the sign-in page, or R for any other redirect.

A URL pattern that is not in the GRID fails the suite: add it, with the statuses you intend (the failure message
prints what each role got). admin/ and i18n/ are left out by explicit rule (tests/security/grid.py).
"""

from dataclasses import dataclass, field

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from tests.security.grid import ROLE_FIXTURES, ROLES, build_canaries, build_world, grid_patterns


@dataclass(frozen=True)
class Door:
    get: str
    post: str
    kwargs: object = None  # World -> dict of URL kwargs
    query: dict = field(default_factory=dict)  # extra GET variants (exports) expected like the GET row
    public: bool = False  # anonymous may read it: it holds no data (say why where it is set)
    htmx: bool = False  # also fetched as an htmx fragment (HX-Request), expected like the GET row


def slug(w):
    return {"slug": w.campaign.slug}


GRID = {
    # Sign-in, sessions, two-factor (accounts/)
    "login": Door(get="200 R R R R R", post="200 R R R R R"),
    "logout": Door(get="405 405 405 405 405 405", post="L L L L L L"),
    "home": Door(get="L R R R R R", post="L R R R R R"),
    "accounts:otp_verify": Door(get="L R R R R R", post="L R R R R R"),
    "accounts:otp_setup": Door(get="L 200 200 200 200 200", post="L 200 200 200 200 200"),
    "accounts:password_change": Door(get="L 200 200 200 200 200", post="L 200 200 200 200 200"),
    "accounts:password_change_done": Door(get="L 200 200 200 200 200", post="L 405 405 405 405 405"),
    # The audit trail: admins only, each their own province (the rows are checked in tests/audit).
    "audit:event_list": Door(get="L 403 403 403 200 200", post="L 403 403 403 405 405"),
    # Campaigns: admins manage, managers read; staff have no campaign pages.
    "campaigns:campaign_list": Door(get="L 403 403 200 200 200", post="L 405 405 405 405 405"),
    "campaigns:campaign_create": Door(get="L 403 403 403 200 200", post="L 403 403 403 200 200"),
    "campaigns:campaign_detail": Door(get="L 403 403 200 200 404", post="L 405 405 405 405 405", kwargs=slug),
    "campaigns:campaign_edit": Door(get="L 403 403 403 200 404", post="L 403 403 403 200 404", kwargs=slug),
    "campaigns:campaign_targets": Door(get="L 403 403 200 200 404", post="L 403 403 403 200 404", kwargs=slug),
    "campaigns:target_template_xlsx": Door(get="L 403 403 403 200 404", post="L 405 405 405 405 405", kwargs=slug),
    "campaigns:target_template_csv": Door(get="L 403 403 403 200 404", post="L 405 405 405 405 405", kwargs=slug),
    "campaigns:target_import": Door(get="L 403 403 403 200 404", post="L 403 403 403 200 404", kwargs=slug),
    "campaigns:target_import_preview": Door(
        get="L 403 403 403 200 404",
        post="L 403 403 403 R 404",
        kwargs=lambda w: {"slug": w.campaign.slug, "pk": w.target_import.pk},
    ),
    "campaigns:target_import_cancel": Door(
        get="L 405 405 405 405 405",
        post="L 403 403 403 R 404",
        kwargs=lambda w: {"slug": w.campaign.slug, "pk": w.target_import.pk},
    ),
    # Enrollments: staff and admins write, managers read; another unit's record is 404.
    "participants:enrollment_list": Door(
        # POST is the filter form: the search term goes into the session and the answer redirects to the list.
        get="L 200 200 200 200 200", post="L R R R R R", query={"_export": "csv"}
    ),
    "participants:enrollment_create": Door(get="L 200 200 403 200 200", post="L 200 200 403 200 200"),
    "participants:participant_lookup": Door(get="L 405 405 405 405 405", htmx=True, post="L 200 200 403 200 200"),
    "participants:unit_communes": Door(get="L 200 200 403 200 200", htmx=True, post="L 405 405 405 405 405"),
    "participants:enrollment_detail": Door(
        get="L 200 404 200 200 404", post="L 405 405 405 405 405", kwargs=lambda w: {"pk": w.enrollment.pk}
    ),
    "participants:enrollment_edit": Door(
        get="L 200 404 403 200 404", post="L 200 404 403 200 404", kwargs=lambda w: {"pk": w.enrollment.pk}
    ),
    "participants:enrollment_delete": Door(
        get="L 200 404 403 200 404", post="L R 404 403 R 404", kwargs=lambda w: {"pk": w.enrollment.pk}
    ),
    "participants:enrollment_upload": Door(get="L 200 200 403 200 200", post="L 200 200 403 200 200"),
    "participants:enrollment_upload_template": Door(get="L 200 200 403 200 200", post="L 405 405 405 405 405"),
    # An upload is its uploader's alone (staff here): everyone else gets 404, even the province's admin.
    "participants:enrollment_upload_detail": Door(
        get="L 200 404 403 404 404", htmx=True, post="L 405 405 405 405 405", kwargs=lambda w: {"pk": w.upload.pk}
    ),
    "participants:enrollment_upload_confirm": Door(
        get="L 405 405 405 405 405", post="L R 404 403 404 404", kwargs=lambda w: {"pk": w.upload.pk}
    ),
    # Reports: everyone of the province reads (scoped inside); another unit's unit page is 404.
    "reports:province_overview": Door(get="L 200 200 200 200 200", post="L 405 405 405 405 405"),
    "reports:campaign_dashboard": Door(
        get="L 200 200 200 200 404", post="L 405 405 405 405 405", kwargs=slug, query={"_export": "csv"}
    ),
    "reports:unit_detail": Door(
        get="L 200 404 200 200 404",
        post="L 405 405 405 405 405",
        kwargs=lambda w: {"slug": w.campaign.slug, "code": w.unit.code},
        query={"_export": "csv"},
    ),
    "reports:recompute_start": Door(get="L 405 405 405 405 405", post="L 403 403 403 R 404", kwargs=slug),
    "reports:run_progress": Door(
        get="L 403 403 403 200 404", htmx=True, post="L 403 403 403 200 404", kwargs=lambda w: {"pk": w.run.pk}
    ),
    # The read-only API: 401 without a session, scoped like the pages; POST is never allowed.
    "api:campaign_list": Door(get="401 200 200 200 200 200", post="405 405 405 405 405 405"),
    "api:campaign_attainment": Door(get="401 200 200 200 200 404", post="405 405 405 405 405 405", kwargs=slug),
    # The OpenAPI description of the API: public on purpose, it describes the interface and holds no data.
    "api:openapi": Door(get="200 200 200 200 200 200", post="405 405 405 405 405 405", public=True),
    "api:schema": Door(get="200 200 200 200 200 200", post="405 405 405 405 405 405", public=True),
}


# Strings of the world (build_world: the staff user's unit in the main province) that give its rows away.
WORLD_STRINGS = ("2499990001", "grid-campaign")


def _out_of_scope(role, canaries) -> tuple[str, ...]:
    """What `role` must never find in a page: the other province's rows, and for unit staff another unit's."""
    return {
        "anonymous": canaries.foreign + canaries.other_unit + WORLD_STRINGS,
        "staff": canaries.foreign + canaries.other_unit,
        "other_staff": canaries.foreign + WORLD_STRINGS[:1],
        "manager": canaries.foreign,
        "admin": canaries.foreign,
        "foreign_admin": canaries.other_unit + WORLD_STRINGS,
    }[role]


def _outcome(response) -> str:
    if response.status_code in (301, 302, 303):
        return "L" if response["Location"].startswith(reverse("login")) else "R"
    return str(response.status_code)


def test_every_url_pattern_is_in_the_grid():
    names = {name for name, _route in grid_patterns()}
    missing = sorted(names - GRID.keys())
    assert not missing, (
        f"These URL names are not in the permission grid: {missing}. Add each to GRID in "
        "tests/security/test_permission_grid.py with its URL kwargs and the status you intend for each role "
        "(anonymous, staff, other_staff, manager, admin, foreign_admin) on GET and POST."
    )
    stale = sorted(GRID.keys() - names)
    assert not stale, f"The permission grid names URLs that no longer exist: {stale}. Remove them from GRID."


def test_every_row_of_the_grid_has_one_status_per_role():
    for name, door in GRID.items():
        for method in ("get", "post"):
            assert len(getattr(door, method).split()) == len(ROLES), (name, method)


@pytest.mark.parametrize("name", sorted(GRID))
def test_each_role_gets_the_intended_status_and_never_a_foreign_row(
    request,
    name,
    province,
    other_province,
    unit,
    other_unit,
    foreign_unit,
    commune,
    other_commune,
    staff_user,
    other_staff_user,
    admin_user,
    foreign_admin_user,
):
    door = GRID[name]
    users = {role: request.getfixturevalue(fixture) for role, fixture in ROLE_FIXTURES.items()}
    canaries = build_canaries(
        other_unit=other_unit,
        foreign_unit=foreign_unit,
        other_commune=other_commune,
        other_staff_user=other_staff_user,
        foreign_admin_user=foreign_admin_user,
    )
    problems = []
    for method in ("get", "post"):
        expected = dict(zip(ROLES, getattr(door, method).split(), strict=True))
        variants = [({}, {})]
        if method == "get" and door.query:
            variants.append((door.query, {}))
        if method == "get" and door.htmx:
            variants.append(({}, {"HTTP_HX_REQUEST": "true"}))
        for role in ROLES:
            for query, headers in variants:
                # Each request sees a fresh world: a POST that deletes or confirms must not change the next one.
                savepoint = transaction.savepoint()
                world = build_world(
                    province=province, unit=unit, commune=commune, staff_user=staff_user, admin_user=admin_user
                )
                url = reverse(name, kwargs=door.kwargs(world) if door.kwargs else None)
                client = Client(raise_request_exception=False)
                if role != "anonymous":
                    client.force_login(users[role])
                response = getattr(client, method)(url, query or None, **headers)
                got = _outcome(response)
                label = f"{method.upper()} {url}{'?' + '&'.join(query) if query else ''}{' (htmx)' if headers else ''} as {role}"
                if got != expected[role]:
                    problems.append(f"{label}: expected {expected[role]}, got {got}")
                if response.status_code >= 500:
                    problems.append(f"{label}: server error")
                if response.status_code == 200 and not getattr(response, "streaming", False):
                    body = response.content.decode("utf-8", errors="replace")
                    leaked = [c for c in _out_of_scope(role, canaries) if c in body]
                    if leaked:
                        problems.append(f"{label}: shows rows outside the user's scope: {leaked}")
                anonymous_page = role == "anonymous" and response.status_code == 200 and method == "get"
                if anonymous_page and not door.public and name != "login":
                    problems.append(f"{label}: an anonymous visitor got a page")
                transaction.savepoint_rollback(savepoint)
    assert not problems, "\n".join(problems)


def test_the_canaries_are_seen_where_they_may_be_so_their_absence_elsewhere_means_something(
    client,
    province,
    other_province,
    unit,
    other_unit,
    foreign_unit,
    other_commune,
    manager_user,
    foreign_admin_user,
    other_staff_user,
):
    canaries = build_canaries(
        other_unit=other_unit,
        foreign_unit=foreign_unit,
        other_commune=other_commune,
        other_staff_user=other_staff_user,
        foreign_admin_user=foreign_admin_user,
    )
    client.force_login(manager_user)
    body = client.get(reverse("participants:enrollment_list")).content.decode()
    assert all(c in body for c in canaries.other_unit)
    client.force_login(foreign_admin_user)
    body = client.get(reverse("participants:enrollment_list")).content.decode()
    assert canaries.foreign[0] in body and canaries.foreign[1] in body
    assert canaries.foreign[3] in client.get(reverse("campaigns:campaign_list")).content.decode()
