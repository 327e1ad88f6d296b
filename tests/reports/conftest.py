import contextlib
import datetime

import pytest

from campaigns.models import Campaign, Target
from participants.models import Enrollment, EnrollmentKind, Participant, Scheme, add_months
from tests.factories import CampaignFactory, CommuneFactory, DistrictFactory, ParticipantFactory

D = datetime.date


def enroll(
    *,
    unit,
    scheme=Scheme.VSI,
    kind=EnrollmentKind.NEW,
    on,
    coverage_start=None,
    months=12,
    participant=None,
    commune=None,
    **extra,
):
    """One enrollment written directly, with an explicit kind, for exact hand-computed cases."""
    participant = participant or ParticipantFactory()
    coverage_start = coverage_start or on
    commune = commune or unit.communes.first() or CommuneFactory(district=unit)
    return Enrollment.objects.create(
        participant=participant,
        scheme=scheme,
        kind=kind,
        enrolled_on=on,
        coverage_start=coverage_start,
        coverage_end=add_months(coverage_start, months),
        months=months,
        unit=unit,
        commune=commune,
        **extra,
    )


@pytest.fixture
def march_campaign(province, unit, other_unit):
    """14–31 March 2024 (18 days): unit target 10 VSI, other unit 0 VSI, province-level 25 VSI (not the sum)."""
    campaign = CampaignFactory(
        province=province, slug="march-2024", name="Tháng ba 2024", start_date=D(2024, 3, 14), end_date=D(2024, 3, 31)
    )
    Target.objects.create(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=10)
    Target.objects.create(campaign=campaign, unit=other_unit, scheme=Scheme.VSI, value=0)
    Target.objects.create(campaign=campaign, unit=None, scheme=Scheme.VSI, value=25)
    Target.objects.create(campaign=campaign, unit=unit, scheme=Scheme.HI_FAMILY, value=30)
    return campaign


@pytest.fixture
def march_enrollments(march_campaign, unit, other_unit, foreign_unit):
    """unit: 13/3 (before), 14/3 new, 20/3 resumed, 20/3 renewal, 31/3 new, 1/4 (after); other unit: 15/3, 16/3."""
    enroll(unit=unit, on=D(2024, 3, 13))
    enroll(unit=unit, on=D(2024, 3, 14))
    enroll(unit=unit, on=D(2024, 3, 20), kind=EnrollmentKind.RESUMED)
    enroll(unit=unit, on=D(2024, 3, 20), kind=EnrollmentKind.RENEWAL)
    enroll(unit=unit, on=D(2024, 3, 31))
    enroll(unit=unit, on=D(2024, 4, 1))
    enroll(unit=other_unit, on=D(2024, 3, 15))
    enroll(unit=other_unit, on=D(2024, 3, 16))
    # Another province's enrollment in the window never counts here.
    enroll(unit=foreign_unit, on=D(2024, 3, 20))
    return march_campaign


@pytest.fixture
def stock_campaign(province, unit, other_unit, foreign_unit):
    """Annual plan 2024 on the stock, as of 15/10/2024; unit target 5 VSI, no province-level target."""
    campaign = CampaignFactory(
        province=province,
        slug="plan-2024",
        name="Kế hoạch 2024",
        start_date=D(2024, 1, 1),
        end_date=D(2024, 12, 31),
        measure=Campaign.Measure.STOCK,
    )
    Target.objects.create(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=5)
    p1, p2 = ParticipantFactory(), ParticipantFactory()
    enroll(unit=unit, on=D(2023, 1, 1), months=24, participant=p1)  # covers every comparison day
    enroll(unit=unit, on=D(2023, 10, 16), participant=p2)  # from the day after 15/10/2023 to 15/10/2024
    enroll(unit=unit, on=D(2024, 10, 16), participant=p2, kind=EnrollmentKind.RENEWAL)  # continues from 16/10
    enroll(unit=unit, on=D(2024, 10, 1), months=1)  # October only
    enroll(unit=unit, on=D(2024, 9, 1), months=1)  # September only: its last covered day is 30/09
    enroll(unit=unit, on=D(2023, 12, 31), months=1)  # covers 31/12/2023 only of the comparison days
    enroll(unit=unit, on=D(2024, 10, 5), months=3)
    enroll(unit=other_unit, on=D(2024, 1, 1))
    enroll(unit=foreign_unit, on=D(2023, 1, 1), months=36)
    return campaign


def figures(rows, unit=None, scheme=Scheme.VSI):
    unit_id = unit.pk if unit is not None else None
    (row,) = [r for r in rows if r.unit_id == unit_id and r.scheme == scheme]
    return row


__all__ = ["D", "enroll", "figures", "Participant", "DistrictFactory"]


def _reset_producer_pools(app):
    # The app caches its broker connection pool; a new broker_url only takes effect on a fresh pool.
    from kombu import pools

    # kombu keeps pools in a global registry keyed by connection: clear it, or a closed pool comes back.
    with contextlib.suppress(Exception):
        pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.__dict__.pop("backend", None)
    app._local.__dict__.pop("backend", None)


@pytest.fixture
def broker_at():
    """Points the Celery app at a given broker (and result backend) for one test, not eager; restores after."""
    from config.celery import app

    keys = ("broker_url", "result_backend", "task_always_eager")
    old = {k: app.conf[k] for k in keys}

    def configure(url, *, result_backend=None):
        app.conf.broker_url = url
        app.conf.result_backend = result_backend or url
        app.conf.task_always_eager = False
        _reset_producer_pools(app)
        return app

    yield configure
    for k, v in old.items():
        app.conf[k] = v
    _reset_producer_pools(app)


# Every stored figure of a campaign's snapshot, in a stable order: two runs (full, incremental, repeated) must agree
# on all of them.
SNAPSHOT_TOTAL_FIELDS = (
    "unit_id",
    "scheme",
    "enrolled",
    "new",
    "resumed",
    "target",
    "achieved",
    "active",
    "attained_pct",
    "remaining",
    "required_daily_pace",
    "current_daily_pace",
    "projected_at_end",
    "on_track",
    "rank_enrolled",
    "rank_attained",
    "as_of",
)


def snapshot_state(campaign):
    """(totals, daily) of the campaign's snapshot as sorted tuples, for comparing two runs."""
    from reports.models import AttainmentDaily, AttainmentTotal

    totals = sorted(AttainmentTotal.objects.filter(campaign=campaign).values_list(*SNAPSHOT_TOTAL_FIELDS), key=str)
    daily = sorted(
        AttainmentDaily.objects.filter(campaign=campaign).values_list("unit_id", "scheme", "day", "count", "new"),
        key=str,
    )
    return totals, daily
