import pytest
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from participants.models import Scheme
from reports import engine
from reports.models import AttainmentTotal, PendingRefresh
from tests.factories import DistrictFactory
from tests.reports.conftest import D, enroll


@pytest.fixture
def snapshot(march_enrollments):
    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 20))
    return march_enrollments


def test_the_manager_sees_the_province_figures_in_vietnamese_format(client, manager_user, snapshot, unit):
    client.force_login(manager_user)
    response = client.get(reverse("reports:campaign_dashboard", kwargs={"slug": snapshot.slug}))
    assert response.status_code == 200
    body = response.content.decode()
    assert "16,00%" in body  # province: 4 / 25
    assert "20,00%" in body  # the unit's row in the ranking
    assert unit.name in body
    assert body.count("plotly-basic.min.js") == 1
    assert "20/03/2024" in body  # as of


def test_large_numbers_use_a_dot_for_thousands_in_vietnamese(client, manager_user, snapshot):
    AttainmentTotal.objects.filter(campaign=snapshot, unit=None, scheme=Scheme.VSI).update(
        enrolled=36421, achieved=36421
    )
    client.force_login(manager_user)
    body = client.get(reverse("reports:province_overview")).content.decode()
    assert "36.421" in body


def test_staff_see_their_own_unit_only(client, staff_user, snapshot, unit, other_unit):
    client.force_login(staff_user)
    body = client.get(reverse("reports:campaign_dashboard", kwargs={"slug": snapshot.slug})).content.decode()
    assert unit.name in body
    assert other_unit.name not in body
    response = client.get(reverse("reports:unit_detail", kwargs={"slug": snapshot.slug, "code": other_unit.code}))
    assert response.status_code == 404


def test_another_province_gets_404_on_every_page(client, foreign_admin_user, snapshot, unit):
    client.force_login(foreign_admin_user)
    assert client.get(reverse("reports:campaign_dashboard", kwargs={"slug": snapshot.slug})).status_code == 404
    assert (
        client.get(reverse("reports:unit_detail", kwargs={"slug": snapshot.slug, "code": unit.code})).status_code == 404
    )
    assert client.post(reverse("reports:recompute_start", kwargs={"slug": snapshot.slug})).status_code == 404
    body = client.get(reverse("reports:province_overview")).content.decode()
    assert snapshot.name not in body


def test_the_overview_lists_active_campaigns_first(client, manager_user, snapshot, province):
    from campaigns.models import Campaign
    from tests.factories import CampaignFactory

    CampaignFactory(
        province=province,
        name="Đã đóng",
        slug="closed-one",
        status=Campaign.Status.CLOSED,
        start_date=D(2025, 1, 1),
        end_date=D(2025, 1, 31),
    )
    client.force_login(manager_user)
    body = client.get(reverse("reports:province_overview")).content.decode()
    assert body.index(snapshot.name) < body.index("Đã đóng")


def test_the_ranking_exports_as_csv_and_xlsx(client, manager_user, snapshot, unit, other_unit):
    client.force_login(manager_user)
    url = reverse("reports:campaign_dashboard", kwargs={"slug": snapshot.slug})
    csv = client.get(url, {"_export": "csv", "scheme": "vsi"})
    assert csv.status_code == 200
    text = csv.content.decode("utf-8-sig")
    assert unit.name in text and other_unit.name in text
    assert "Tỉnh" not in text.splitlines()[0]
    xlsx = client.get(url, {"_export": "xlsx"})
    assert xlsx.status_code == 200
    assert xlsx.content[:2] == b"PK"


def test_the_ranking_filters_by_scheme_and_progress(client, manager_user, snapshot, unit, other_unit):
    client.force_login(manager_user)
    url = reverse("reports:campaign_dashboard", kwargs={"slug": snapshot.slug})
    text = client.get(url, {"_export": "csv", "scheme": "vsi", "on_track": "yes"}).content.decode("utf-8-sig")
    assert other_unit.name in text and unit.name not in text


def test_the_dashboard_query_count_does_not_grow_with_the_number_of_units(
    client, manager_user, snapshot, province, django_assert_max_num_queries
):
    client.force_login(manager_user)
    url = reverse("reports:campaign_dashboard", kwargs={"slug": snapshot.slug})
    from django.db import connection

    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for n in range(12):
        unit = DistrictFactory(province=province, code=f"95{n:02d}", name=f"Huyện Thêm {n}")
        enroll(unit=unit, on=D(2024, 3, 15))
    engine.snapshot_rebuild(campaigns=[snapshot], as_of=D(2024, 3, 20))
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few)
    assert len(few) < 30


def test_the_unit_page_lists_communes_and_collectors(client, manager_user, snapshot, unit, commune):
    client.force_login(manager_user)
    body = client.get(
        reverse("reports:unit_detail", kwargs={"slug": snapshot.slug, "code": unit.code})
    ).content.decode()
    assert commune.name in body
    assert "Recorded at the office" in body or "Thu tại cơ quan" in body or "–" in body


def test_pending_changes_show_a_stale_warning(client, manager_user, snapshot, unit):
    client.force_login(manager_user)
    url = reverse("reports:campaign_dashboard", kwargs={"slug": snapshot.slug})
    assert 'data-testid="stale-warning"' not in client.get(url).content.decode()
    engine.pending_mark({snapshot.pk: {unit.pk}})
    assert PendingRefresh.objects.count() == 1
    assert 'data-testid="stale-warning"' in client.get(url).content.decode()


def test_unit_names_are_escaped_in_charts_and_tables(client, manager_user, march_campaign, province):
    evil = DistrictFactory(province=province, code="9666", name="<script>alert(1)</script>")
    enroll(unit=evil, on=D(2024, 3, 15))
    engine.snapshot_rebuild(campaigns=[march_campaign], as_of=D(2024, 3, 20))
    client.force_login(manager_user)
    body = client.get(reverse("reports:campaign_dashboard", kwargs={"slug": march_campaign.slug})).content.decode()
    assert "<script>alert(1)</script>" not in body


def test_only_admins_may_start_a_recompute_and_it_completes(
    client, admin_user, manager_user, march_enrollments, celery_eager, django_capture_on_commit_callbacks
):
    url = reverse("reports:recompute_start", kwargs={"slug": march_enrollments.slug})
    client.force_login(manager_user)
    assert client.post(url).status_code == 403
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert AttainmentTotal.objects.filter(campaign=march_enrollments).exists()
    from reports.models import RecomputeRun

    run = RecomputeRun.objects.get(campaign=march_enrollments)
    assert run.status == RecomputeRun.Status.SUCCEEDED and run.started_by == admin_user
    progress = client.get(reverse("reports:run_progress", kwargs={"pk": run.pk}))
    assert "100%" in progress.content.decode()
    assert "hx-trigger" not in progress.content.decode()


def test_the_overview_query_count_does_not_grow_with_the_number_of_campaigns(client, manager_user, snapshot, province):
    from django.db import connection

    from tests.factories import CampaignFactory

    client.force_login(manager_user)
    url = reverse("reports:province_overview")
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    more = [CampaignFactory(province=province, slug=f"extra-{n}") for n in range(5)]
    engine.snapshot_rebuild(campaigns=more)
    with CaptureQueriesContext(connection) as many:
        body = client.get(url).content.decode()
    assert all(c.name in body for c in more)
    assert len(many) == len(few)


def test_the_unit_page_links_to_the_enrollments_behind_its_figures(client, manager_user, commune, snapshot, unit):
    client.force_login(manager_user)
    body = client.get(
        reverse("reports:unit_detail", kwargs={"slug": snapshot.slug, "code": unit.code})
    ).content.decode()
    base = reverse("participants:enrollment_list")
    assert (
        f"{base}?enrolled_from=2024-03-14&amp;enrolled_to=2024-03-20&amp;kind=growth&amp;unit={unit.pk}&amp;scheme=vsi"
        in body
    )
    assert f"commune={commune.pk}" in body
    assert "kind=growth" in body


def test_every_linked_list_holds_exactly_the_enrollments_its_figure_counts(
    client, manager_user, commune, snapshot, unit
):
    """The unit's figure counts new and resumed enrollments only (DESIGN: renewals do not count); the list behind it
    must not show the renewal recorded on 20/3 in the same window, unit, commune and scheme."""
    client.force_login(manager_user)
    page = client.get(reverse("reports:unit_detail", kwargs={"slug": snapshot.slug, "code": unit.code}))
    figure = next(r for r in page.context["rows"] if r.scheme == Scheme.VSI)
    commune_row = next(c for c in page.context["communes"] if c["pk"] == commune.pk)
    dashboard = client.get(reverse("reports:campaign_dashboard", kwargs={"slug": snapshot.slug}))
    assert figure.enrolled == 2  # 14/3 new, 20/3 resumed; the 20/3 renewal is left out
    for url, count in (
        (figure.enrollments_url, figure.enrolled),
        (commune_row["url"], commune_row["total"]),
        # The manager's whole province: 14/3 and 20/3 in the unit, 15/3 and 16/3 in the other unit.
        (dashboard.context["enrollments_url"], 4),
    ):
        listing = client.get(url)
        assert listing.status_code == 200
        shown = listing.context["filter"].qs
        assert shown.count() == count, url
        assert "renewal" not in set(shown.values_list("kind", flat=True)), url


def test_the_progress_partial_polls_while_a_run_is_going(client, admin_user, foreign_admin_user, march_campaign):
    from django.core.cache import cache

    from reports.models import RecomputeRun

    run = RecomputeRun.objects.create(campaign=march_campaign, status=RecomputeRun.Status.RUNNING, steps_total=5)
    cache.set(engine._progress_key(run.pk), (2, 5), 60)
    client.force_login(admin_user)
    body = client.get(reverse("reports:run_progress", kwargs={"pk": run.pk})).content.decode()
    assert "40%" in body and 'hx-trigger="every 1s"' in body
    client.force_login(foreign_admin_user)
    assert client.get(reverse("reports:run_progress", kwargs={"pk": run.pk})).status_code == 404


def test_an_annual_plans_figures_link_to_the_people_covered_on_its_day(client, manager_user, stock_campaign, unit):
    """A plan on the stock counts the people covered on its as-of date (renewals included), not the window's new
    and resumed entries: the list behind its figures holds exactly those."""
    engine.snapshot_rebuild(campaigns=[stock_campaign], as_of=D(2024, 10, 15))
    client.force_login(manager_user)
    dashboard = client.get(reverse("reports:campaign_dashboard", kwargs={"slug": stock_campaign.slug}))
    page = client.get(reverse("reports:unit_detail", kwargs={"slug": stock_campaign.slug, "code": unit.code}))
    figure = next(r for r in page.context["rows"] if r.scheme == Scheme.VSI)
    province = AttainmentTotal.objects.get(campaign=stock_campaign, unit=None, scheme=Scheme.VSI)
    assert figure.active == 4  # p1, p2's first year, 1/10 (one month), 5/10 (three months)
    for url, count in ((dashboard.context["enrollments_url"], province.active), (figure.enrollments_url, 4)):
        assert "covered_on=2024-10-15" in url
        listing = client.get(url)
        assert listing.status_code == 200
        assert listing.context["filter"].qs.count() == count, url
