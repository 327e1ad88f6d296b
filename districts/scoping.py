"""The one place that decides what a user may see. Every view, export, API and task scopes through here."""

from __future__ import annotations

import functools

from django.db.models import BooleanField, CharField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.functional import empty

ROLE_STAFF = "staff"
ROLE_MANAGER = "manager"
ROLE_ADMIN = "admin"
ROLES = (ROLE_STAFF, ROLE_MANAGER, ROLE_ADMIN)


def _caches(user) -> dict:
    """Where the per-user caches live: the user object's own attributes, also when `user` is the request's lazy
    proxy of it (request.user is a lazy object wrapping another, django-otp's around Django's), so that the caches
    seeded when the user was read are found."""
    while True:
        wrapped = user.__dict__.get("_wrapped")
        if wrapped is None:
            return user.__dict__
        if wrapped is empty:
            user._setup()
            wrapped = user._wrapped
        user = wrapped


def role_of(user) -> str | None:
    """The user's role: admin, manager or staff (the strongest group they are in); None for anyone else."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ROLE_ADMIN
    # One query per request's user object, not one per call: a page asks many times (navigation, scoping, views).
    # The cache lives on the object and keys on the primary key, so a reloaded user is asked afresh.
    cached = _caches(user).get("_role_cache")
    if cached is None or cached[0] != user.pk:
        access_load(user)
        cached = _caches(user)["_role_cache"]
    return cached[1]


def scope_of(user):
    """The user's UserScope row, or None (superusers have none and see everything)."""
    if not user.is_authenticated:
        return None
    if not user.is_superuser and "scope" not in user._state.fields_cache and "_role_cache" not in _caches(user):
        access_load(user)
    return getattr(user, "scope", None)


def access_queryset():
    """The users, each read with what every request asks of them: the role flags, the scope with its province and
    unit, and whether a confirmed second-factor device exists (the session middleware's question). One query; the
    sign-in backend (accounts.backends) reads the request's user through it, so a page pays no second query.

    Built once per process (never evaluated itself: every caller filters a copy); building its annotations took
    more ORM work than running it."""
    return _access_queryset()


@functools.cache
def _access_queryset():
    # The role and the device as two hand-written subqueries on the user's row: compiling the ORM's four EXISTS
    # (three groups and the device) on every request cost more than the query itself. Names come from the models.
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django_otp import device_classes

    qn = connection.ops.quote_name
    user_model = get_user_model()
    user_id = f"{qn(user_model._meta.db_table)}.{qn(user_model._meta.pk.column)}"
    membership = user_model.groups.through._meta
    member, group = qn(membership.get_field("user").column), qn(membership.get_field("group").column)
    name = qn(Group._meta.get_field("name").column)
    strongest_role = RawSQL(  # noqa: S611 # nosec B611 - names from models, values are parameters
        f"SELECT g.{name} FROM {qn(membership.db_table)} m "  # noqa: S608 # nosec B608 - names from models
        f"JOIN {qn(Group._meta.db_table)} g ON g.{qn(Group._meta.pk.column)} = m.{group} "
        f"WHERE m.{member} = {user_id} AND g.{name} IN (%s, %s, %s) "
        f"ORDER BY CASE g.{name} WHEN %s THEN 0 WHEN %s THEN 1 ELSE 2 END LIMIT 1",
        (ROLE_ADMIN, ROLE_MANAGER, ROLE_STAFF, ROLE_ADMIN, ROLE_MANAGER),
        output_field=CharField(),
    )
    devices = [
        f"EXISTS (SELECT 1 FROM {qn(model._meta.db_table)} d "  # noqa: S608 # nosec B608 - names from models
        f"WHERE d.{qn(model._meta.get_field('user').column)} = {user_id} "
        f"AND d.{qn(model._meta.get_field('confirmed').column)})"
        for model in device_classes()
    ]
    has_device = RawSQL(" OR ".join(devices) or "1 = 0", (), output_field=BooleanField())  # noqa: S611 # nosec B611 - names from models
    return user_model.objects.select_related("scope__province", "scope__unit").annotate(
        access_role=strongest_role, access_has_device=has_device
    )


def access_seed(user, loaded) -> None:
    """Fills `user`'s caches (role, scope, device) from `loaded`, a row of access_queryset() for the same user (or
    None when the user is gone)."""
    role, scope, has_device = None, None, False
    if loaded is not None:
        role = loaded.access_role
        scope = loaded._state.fields_cache.get("scope")
        has_device = bool(loaded.access_has_device)
    _caches(user)["_role_cache"] = (user.pk, role)
    _caches(user)["_device_cache"] = (user.pk, has_device)
    if scope is not None:
        # A user without a scope is not cached as such: a scope given to them later is then found.
        scope._state.fields_cache["user"] = user
        user._state.fields_cache["scope"] = scope


def access_load(user) -> None:
    """Reads the user's role and scope (with its province and unit) in one query, into the caches role_of and
    scope_of read (`_role_cache` and Django's cache of the `scope` relation): every request asks both, and a
    view's query budget counts them. A user read by access_queryset() (the request's user) has them already."""
    access_seed(user, access_queryset().filter(pk=user.pk).first())


def has_confirmed_device(user) -> bool:
    """Whether the user has a confirmed second-factor device, read with their role and scope (one query a request)."""
    if not user.is_authenticated:
        return False
    cached = _caches(user).get("_device_cache")
    if cached is None or cached[0] != user.pk:
        access_load(user)
        cached = _caches(user)["_device_cache"]
    return cached[1]


def scope_filter(user, *, province_field: str | None = None, unit_field: str | None = None) -> Q:
    """A Q object that keeps only the rows `user` may see.

    `province_field` is the lookup path from the model to its province id (e.g. "unit__province"),
    `unit_field` the path to its unit id. A province-wide user is limited by province; a user tied to one unit by
    that unit when the model has one. A user without a scope (and not a superuser) sees nothing.
    """
    if user.is_authenticated and user.is_active and user.is_superuser:
        return Q()
    scope = scope_of(user)
    if scope is None or role_of(user) is None:
        return Q(pk__in=[])
    q = Q()
    if province_field:
        q &= Q(**{f"{province_field}_id": scope.province_id})
    if scope.unit_id and unit_field:
        # "self_unit" means the rows are units themselves.
        lookup = "pk" if unit_field == "self_unit" else f"{unit_field}_id"
        q &= Q(**{lookup: scope.unit_id})
    return q


def scope_queryset(qs: QuerySet, user, *, province_field: str | None = None, unit_field: str | None = None) -> QuerySet:
    return qs.filter(scope_filter(user, province_field=province_field, unit_field=unit_field))


def visible_units(user):
    """District-level units the user may see: their province's, or only their own unit."""
    from districts.models import District

    return scope_queryset(District.objects.all(), user, province_field="province", unit_field="self_unit")


def visible_provinces(user):
    from districts.models import Province

    if user.is_authenticated and user.is_superuser:
        return Province.objects.all()
    scope = scope_of(user)
    if scope is None or role_of(user) is None:
        return Province.objects.none()
    return Province.objects.filter(pk=scope.province_id)


def visible_campaigns(user):
    from campaigns.models import Campaign

    return scope_queryset(Campaign.objects.all(), user, province_field="province")


def visible_enrollments(user):
    from participants.models import Enrollment

    return scope_queryset(Enrollment.objects.all(), user, province_field="unit__province", unit_field="unit")


def visible_communes(user):
    from districts.models import Commune

    scope = scope_of(user)
    if scope is not None and scope.unit_id and scope.unit.is_provincial_office and role_of(user) is not None:
        # The provincial office has no communes of its own; it serves every commune of its province.
        return Commune.objects.filter(district__province_id=scope.province_id)
    return scope_queryset(Commune.objects.all(), user, province_field="district__province", unit_field="district")
