"""Stored breakdowns (reports/breakdowns.py): built from the engine's snapshot_written signal, equal to the live
count after a full run and after an incremental one, never showing another unit's or province's enrollments."""

import pytest
from django.urls import reverse

from participants.models import EnrollmentKind, Participant, Scheme
from reports import breakdowns, engine, selectors
from reports.models import AttainmentBreakdown
from tests.factories import CampaignFactory, ParticipantFactory
from tests.reports.conftest import D, enroll

AS_OF = D(2024, 3, 25)


@pytest.fixture
def run(django_capture_on_commit_callbacks, celery_eager):
    """engine.snapshot_rebuild, then what it leaves for after the commit (the deferred breakdowns task)."""

    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return engine.snapshot_rebuild(**kwargs)

    return run


@pytest.fixture
def people(march_campaign, unit, other_unit, foreign_unit):
    """Enrollments of every age band, gender and occupation in both units, one in another province's campaign."""
    kinds = [EnrollmentKind.NEW, EnrollmentKind.RESUMED]
    births = [D(2001, 1, 1), D(1999, 3, 14), D(1985, 6, 1), D(1975, 2, 28), D(1969, 3, 15), D(1950, 1, 1)]
    genders = list(Participant.Gender.values)
    occupations = list(Participant.Occupation.values)
    for n, born in enumerate(births * 2):
        person = ParticipantFactory(
            date_of_birth=born, gender=genders[n % len(genders)], occupation=occupations[n % len(occupations)]
        )
        enroll(
            unit=unit if n % 3 else other_unit,
            on=D(2024, 3, 14 + n),
            participant=person,
            kind=kinds[n % 2],
            scheme=Scheme.VSI if n % 4 else Scheme.HI_FAMILY,
        )
    # Not counted: a renewal, a day before the window, another province's enrollment.
    enroll(unit=unit, on=D(2024, 3, 16), kind=EnrollmentKind.RENEWAL, coverage_start=D(2025, 1, 1))
    enroll(unit=unit, on=D(2024, 3, 13))
    foreign = CampaignFactory(
        province=foreign_unit.province, slug="xa-2024", start_date=D(2024, 3, 1), end_date=D(2024, 3, 31)
    )
    enroll(unit=foreign_unit, on=D(2024, 3, 20))
    return march_campaign, foreign


def _assert_stored_equals_live(user, campaign, as_of, units):
    stored = breakdowns.stored_breakdown(campaign=campaign, as_of=as_of)
    assert stored is not None
    live = selectors.breakdown(user, campaign, as_of)
    for dimension in ("age", "gender", "occupation"):
        assert stored[dimension] == live[dimension], dimension
    kinds = {g["group"]: g["total"] for g in stored["kind"]}
    assert kinds == {k: n for k, n in selectors.kind_counts(user, campaign, as_of).items() if n}
    for unit in units:
        one = breakdowns.stored_breakdown(campaign=campaign, as_of=as_of, unit_id=unit.pk)
        live_one = selectors.breakdown(user, campaign, as_of, unit=unit)
        assert {d: one[d] for d in ("age", "gender", "occupation")} == live_one


def test_a_full_run_stores_breakdowns_equal_to_the_live_count(
    run, people, manager_user, unit, other_unit, foreign_unit
):
    campaign, foreign = people
    run(campaigns=[campaign, foreign], as_of=AS_OF)

    _assert_stored_equals_live(manager_user, campaign, AS_OF, [unit, other_unit])
    assert breakdowns.stored_breakdown(campaign=campaign, as_of=AS_OF)["age"][0]["group"] == "under_25"
    # Each campaign holds its own province's units only, and one marker for the date.
    assert set(AttainmentBreakdown.objects.filter(campaign=campaign).values_list("unit_id", flat=True)) == {
        unit.pk,
        other_unit.pk,
        None,
    }
    assert set(AttainmentBreakdown.objects.filter(campaign=foreign).values_list("unit_id", flat=True)) == {
        foreign_unit.pk,
        None,
    }
    # Another date than the snapshot's: nothing stored, the page counts live.
    assert breakdowns.stored_breakdown(campaign=campaign, as_of=D(2024, 3, 31)) is None


def test_an_incremental_run_rebuilds_only_the_touched_units(run, people, manager_user, unit, other_unit):
    campaign, _foreign = people
    run(campaigns=[campaign], as_of=AS_OF)
    untouched = set(AttainmentBreakdown.objects.filter(campaign=campaign, unit=other_unit).values_list("pk", "count"))

    enroll(unit=unit, on=D(2024, 3, 24), participant=ParticipantFactory(date_of_birth=D(1990, 1, 1)))
    enroll(unit=unit, on=D(2024, 3, 25), kind=EnrollmentKind.RESUMED, scheme=Scheme.HI_FAMILY)
    run(campaigns=[campaign], as_of=AS_OF, unit_ids={campaign.pk: {unit.pk}})

    _assert_stored_equals_live(manager_user, campaign, AS_OF, [unit, other_unit])
    assert (
        set(AttainmentBreakdown.objects.filter(campaign=campaign, unit=other_unit).values_list("pk", "count"))
        == untouched
    )

    # An incremental run for another date rebuilds the whole campaign at that date.
    run(campaigns=[campaign], as_of=D(2024, 3, 31), unit_ids={campaign.pk: {unit.pk}})
    assert set(AttainmentBreakdown.objects.filter(campaign=campaign).values_list("as_of", flat=True)) == {
        D(2024, 3, 31)
    }
    _assert_stored_equals_live(manager_user, campaign, D(2024, 3, 31), [unit, other_unit])


def test_staff_read_only_their_own_units_stored_rows(run, people, staff_user, manager_user, unit, other_unit):
    campaign, _foreign = people
    run(campaigns=[campaign], as_of=AS_OF)

    data, live = selectors.breakdown_for_page(staff_user, campaign, AS_OF)
    assert live is False
    assert {d: data[d] for d in ("age", "gender", "occupation")} == selectors.breakdown(staff_user, campaign, AS_OF)
    assert data == breakdowns.stored_breakdown(campaign=campaign, as_of=AS_OF, unit_id=unit.pk)
    assert data != breakdowns.stored_breakdown(campaign=campaign, as_of=AS_OF)
    # Asking for another unit than their own gives nothing of it.
    other, _ = selectors.breakdown_for_page(staff_user, campaign, AS_OF, unit=other_unit)
    assert all(other[d] == [] for d in ("age", "gender", "occupation", "kind"))


def test_the_dashboard_shows_the_stored_breakdown_and_says_when_it_counts_live(
    client, run, people, manager_user, unit, other_unit
):
    campaign, _foreign = people
    run(campaigns=[campaign], as_of=AS_OF)
    client.force_login(manager_user)
    url = reverse("reports:campaign_dashboard", kwargs={"slug": campaign.slug})
    stored_page = client.get(url).content.decode()
    assert 'data-testid="breakdown-live"' not in stored_page

    AttainmentBreakdown.objects.filter(campaign=campaign).delete()
    live_page = client.get(url).content.decode()
    assert 'data-testid="breakdown-live"' in live_page
    # Same figures either way.
    section = 'aria-labelledby="breakdown-title"'
    strip = lambda page: page[page.index(section) :].split("</section>")[0]  # noqa: E731
    without_note = strip(live_page)
    without_note = without_note[: without_note.index("<p ")] + without_note[without_note.index("</p>") + 4 :]
    assert _no_chart_ids(strip(stored_page)) == _no_chart_ids(without_note)


def _no_chart_ids(markup: str) -> str:
    import re

    return re.sub(r"chart-[0-9a-f]{32}", "chart-x", markup)


def test_an_incremental_run_over_many_units_defers_their_rebuild_to_a_task(
    client, run, people, manager_user, unit, other_unit, monkeypatch, celery_eager, django_capture_on_commit_callbacks
):
    campaign, _foreign = people
    run(campaigns=[campaign], as_of=AS_OF)
    monkeypatch.setattr(breakdowns, "SYNC_MAX_UNITS", 1)
    enroll(unit=unit, on=D(2024, 3, 24), participant=ParticipantFactory(date_of_birth=D(1990, 1, 1)))
    enroll(unit=other_unit, on=D(2024, 3, 25), kind=EnrollmentKind.RESUMED)
    before = breakdowns.stored_breakdown(campaign=campaign, as_of=AS_OF)

    with django_capture_on_commit_callbacks() as callbacks:
        engine.snapshot_rebuild(campaigns=[campaign], as_of=AS_OF, unit_ids={campaign.pk: {unit.pk, other_unit.pk}})
    # Until the task has run: the previous counts, said to be updating.
    pending = breakdowns.stored_breakdown(campaign=campaign, as_of=AS_OF)
    assert pending["pending"] is True
    assert {k: v for k, v in pending.items() if k != "pending"} == {k: v for k, v in before.items() if k != "pending"}
    client.force_login(manager_user)
    url = reverse("reports:campaign_dashboard", kwargs={"slug": campaign.slug})
    assert 'data-testid="breakdown-pending"' in client.get(url).content.decode()

    for callback in callbacks:
        callback()
    assert breakdowns.stored_breakdown(campaign=campaign, as_of=AS_OF)["pending"] is False
    _assert_stored_equals_live(manager_user, campaign, AS_OF, [unit, other_unit])
    assert 'data-testid="breakdown-pending"' not in client.get(url).content.decode()


def test_a_full_run_leaves_the_build_to_a_task_after_its_commit(
    people, manager_user, unit, other_unit, django_capture_on_commit_callbacks, celery_eager
):
    campaign, _foreign = people
    with django_capture_on_commit_callbacks() as callbacks:
        engine.snapshot_rebuild(campaigns=[campaign], as_of=AS_OF)
    assert breakdowns.stored_breakdown(campaign=campaign, as_of=AS_OF) is None  # the page counts live meanwhile
    assert selectors.breakdown_for_page(manager_user, campaign, AS_OF)[1] is True
    for callback in callbacks:
        callback()
    _assert_stored_equals_live(manager_user, campaign, AS_OF, [unit, other_unit])
    assert selectors.breakdown_for_page(manager_user, campaign, AS_OF)[1] is False


def test_a_rebuild_of_more_units_than_a_whole_pass_costs_takes_the_whole_pass(
    run, people, manager_user, unit, other_unit, monkeypatch
):
    """Each (campaign, unit) pair of a partial rebuild reads that unit's window through an index and looks up its
    people one by one (~60 ms at 10 million enrollments); a national day's refresh touches ~1,400 pairs (82 s
    measured), where one pass over the whole table costs ~11 s. Past FULL_ABOVE_PAIRS the touched campaigns are
    rebuilt whole: the same rows, the marker kept."""
    campaign, _foreign = people
    run(campaigns=[campaign], as_of=AS_OF)
    enroll(unit=unit, on=D(2024, 3, 24), participant=ParticipantFactory(date_of_birth=D(1990, 1, 1)))
    enroll(unit=other_unit, on=D(2024, 3, 25), kind=EnrollmentKind.RESUMED)
    monkeypatch.setattr(breakdowns, "FULL_ABOVE_PAIRS", 1, raising=False)
    statements = []
    monkeypatch.setattr(breakdowns, "_insert", lambda jobs, touched=None: statements.append(touched) or 0)
    breakdowns.rebuild([campaign.pk], unit_ids={campaign.pk: {unit.pk, other_unit.pk}})
    assert statements == [None]  # one whole pass, no list of pairs
    monkeypatch.undo()
    monkeypatch.setattr(breakdowns, "FULL_ABOVE_PAIRS", 1)
    breakdowns.rebuild([campaign.pk], unit_ids={campaign.pk: {unit.pk, other_unit.pk}})
    _assert_stored_equals_live(manager_user, campaign, AS_OF, [unit, other_unit])
    assert AttainmentBreakdown.objects.filter(campaign=campaign, dimension="built").count() == 1
