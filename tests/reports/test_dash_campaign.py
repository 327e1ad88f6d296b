"""The dashboard reads its campaign in SQL on PostgreSQL (selectors._dashboard_campaign_sql): the same campaign,
province and freshness figures as the ORM's query, and visible to exactly the users visible_campaigns lets see it."""

import pytest
from django.contrib.auth.models import User
from django.db import connection  # noqa: F401 - read by the skipif condition

from campaigns.models import Campaign
from districts.models import Province, UserScope
from districts.scoping import ROLE_MANAGER, visible_campaigns
from reports import engine, selectors
from reports.models import PendingRefresh, RecomputeRun
from tests.factories import UserFactory, make_user
from tests.reports.conftest import D

ANNOTATIONS = ("pending_since", "last_run_status", "last_run_finished_at", "snapshot_at", "snapshot_as_of")


@pytest.fixture
def users(staff_user, manager_user, admin_user, foreign_admin_user, province, other_province):
    no_role = UserFactory(username="no-role")
    UserScope.objects.create(user=no_role, province=province)
    no_role.groups.clear()
    inactive = make_user(ROLE_MANAGER, province=province, username="inactive")
    inactive.is_active = False
    inactive.save()
    root = User.objects.create_superuser("root-dash", "root@example.com", "x")
    inactive_root = User.objects.create_superuser("root-off", "off@example.com", "x", is_active=False)
    no_scope = UserFactory(username="no-scope", role=ROLE_MANAGER)
    return [
        staff_user,
        manager_user,
        admin_user,
        foreign_admin_user,
        no_role,
        inactive,
        root,
        inactive_root,
        no_scope,
    ]


def _state(campaign):
    if campaign is None:
        return None
    return (
        {f.attname: getattr(campaign, f.attname) for f in Campaign._meta.concrete_fields},
        {f.attname: getattr(campaign.province, f.attname) for f in Province._meta.concrete_fields},
        {name: getattr(campaign, name) for name in (*ANNOTATIONS, "snapshot_rows")},
    )


def _fresh(user):
    """The same user read afresh: no role or scope cached by an earlier call."""
    return User.objects.get(pk=user.pk)


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the SQL read is PostgreSQL's (SQLite keeps the ORM)")
def test_the_campaign_read_in_sql_is_the_orms_for_every_kind_of_user(users, march_enrollments, unit):
    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 20))
    PendingRefresh.objects.create(campaign=march_enrollments, unit=unit, marked_at=march_enrollments.created_at)
    RecomputeRun.objects.create(campaign=march_enrollments, status=RecomputeRun.Status.FAILED)
    seen = 0
    for user in users:
        for slug in (march_enrollments.slug, "no-such-campaign"):
            user = _fresh(user)
            visible = visible_campaigns(user).filter(slug=slug).exists()
            campaign = selectors.dashboard_campaign(user, slug)
            assert (campaign is not None) == visible, (user.username, slug)
            if campaign is None:
                continue
            seen += 1
            expected = selectors._dashboard_campaign_orm(*_arguments(user, slug))
            got = selectors._dashboard_campaign_sql(*_arguments(user, slug))
            assert _state(got) == _state(expected)
            assert campaign.province.name == march_enrollments.province.name
            assert campaign.snapshot_rows > 0 and campaign.pending_since is not None
            assert campaign.last_run_status == RecomputeRun.Status.FAILED
    assert seen == 4  # staff, manager, admin of the province and the active superuser


def _arguments(user, slug):
    return (user, slug, *selectors.dashboard_campaign_select(user))
