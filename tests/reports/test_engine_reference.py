"""The engine against a straightforward Python reference on a few thousand random enrollments."""

import datetime
import random

import pytest

from campaigns.models import Campaign
from participants.models import Enrollment, EnrollmentKind, Participant, Scheme, add_months
from reports import engine, selectors
from reports.models import AttainmentDaily
from tests.factories import CampaignFactory, CommuneFactory

D = datetime.date
MONTHS = {Scheme.VSI: (1, 3, 6, 12), Scheme.HI_FAMILY: (12,)}


def _random_enrollments(rng, units):
    communes = {u.pk: CommuneFactory(district=u) for u in units}
    people = Participant.objects.bulk_create(
        [
            Participant(
                si_number=f"{7000000000 + n:010d}", full_name=f"Người {n}", date_of_birth=D(1980, 1, 1), gender="male"
            )
            for n in range(900)
        ]
    )
    rows = []
    for person in people:
        for scheme in Scheme.values:
            start = D(2023, 1, 1) + datetime.timedelta(days=rng.randrange(0, 640))
            previous_end = None
            for _ in range(rng.randrange(0, 4)):
                months = rng.choice(MONTHS[scheme])
                end = add_months(start, months)
                kind = (
                    EnrollmentKind.NEW
                    if previous_end is None
                    else EnrollmentKind.RENEWAL
                    if previous_end >= start
                    else EnrollmentKind.RESUMED
                )
                unit = rng.choice(units)
                rows.append(
                    Enrollment(
                        participant=person,
                        scheme=scheme,
                        kind=kind,
                        enrolled_on=start - datetime.timedelta(days=rng.randrange(0, 6)),
                        coverage_start=start,
                        coverage_end=end,
                        months=months,
                        unit=unit,
                        commune=communes[unit.pk],
                    )
                )
                previous_end = end
                start = end + datetime.timedelta(days=rng.choice([0, 0, 1, 15, 90]))
    Enrollment.objects.bulk_create(rows, batch_size=1000)
    return rows


def _reference_growth(rows, campaign, as_of, province_id):
    last = min(as_of, campaign.end_date)
    out = {}
    for e in rows:
        if e.unit.province_id != province_id or not (campaign.start_date <= e.enrolled_on <= last):
            continue
        if e.kind == EnrollmentKind.RENEWAL:
            continue
        for key in ((e.unit_id, e.scheme), (None, e.scheme)):
            counts = out.setdefault(key, {"enrolled": 0, "new": 0, "resumed": 0})
            counts["enrolled"] += 1
            counts[e.kind] += 1
    return out


def _reference_active(rows, day, province_id):
    out = {}
    for e in rows:
        if e.unit.province_id == province_id and e.coverage_start <= day < e.coverage_end:
            for key in ((e.unit_id, e.scheme), (None, e.scheme)):
                out.setdefault(key, set()).add(e.participant_id)
    return {k: len(v) for k, v in out.items()}


@pytest.mark.parametrize("seed", [1, 2])
def test_the_engine_matches_a_reference_computation(seed, province, unit, other_unit, foreign_unit):
    rng = random.Random(seed)
    rows = _random_enrollments(rng, [unit, other_unit, foreign_unit])
    assert len(rows) > 1500
    window = CampaignFactory(province=province, slug=f"peak-{seed}", start_date=D(2024, 4, 1), end_date=D(2024, 5, 31))
    stock = CampaignFactory(
        province=province,
        slug=f"plan-{seed}",
        start_date=D(2024, 1, 1),
        end_date=D(2024, 12, 31),
        measure=Campaign.Measure.STOCK,
    )
    for as_of in (D(2024, 3, 1), D(2024, 4, 1), D(2024, 4, 15), D(2024, 5, 31), D(2024, 6, 20)):
        expected = _reference_growth(rows, window, as_of, province.pk)
        for r in engine.figures_compute(window, as_of):
            got = {"enrolled": r.enrolled, "new": r.new, "resumed": r.resumed}
            assert got == expected.get((r.unit_id, r.scheme), {"enrolled": 0, "new": 0, "resumed": 0}), (as_of, r)

    as_of = D(2024, 10, 15)
    comparisons = {
        "active": as_of,
        "active_prev_month_end": D(2024, 9, 30),
        "active_prev_year_end": D(2023, 12, 31),
        "active_same_day_last_year": D(2023, 10, 15),
    }
    reference = {name: _reference_active(rows, day, province.pk) for name, day in comparisons.items()}
    for r in engine.figures_compute(stock, as_of):
        for name in comparisons:
            assert getattr(r, name) == reference[name].get((r.unit_id, r.scheme), 0), (name, r)

    engine.snapshot_rebuild(campaigns=[window], as_of=D(2024, 5, 10))
    expected = _reference_growth(rows, window, D(2024, 5, 10), province.pk)
    for unit_id, scheme in [(u.pk, s) for u in (unit, other_unit) for s in Scheme.values]:
        series = list(
            AttainmentDaily.objects.filter(campaign=window, unit_id=unit_id, scheme=scheme)
            .order_by("day")
            .values_list("day", "count")
        )
        want = expected.get((unit_id, scheme), {"enrolled": 0})["enrolled"]
        assert sum(c for _, c in series) == want
        assert all(c > 0 for _, c in series)
        # The chart's running total, summed from the day rows, ends at the enrolled count.
        points = selectors.cumulative_series(window, unit_id=unit_id)[scheme]
        assert [day for day, _ in points] == [day for day, _ in series]
        assert (points[-1][1] if points else 0) == want
