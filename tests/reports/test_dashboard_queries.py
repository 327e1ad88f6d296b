"""Issue 6's budget: the dashboard and the attainment API in at most 8 queries (the middleware's session, user and
second-factor look-ups included), and the ranking written in Python equal to django-tables2's own rendering."""

import re

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation
from django_tables2 import RequestConfig

from reports import engine, selectors
from reports.filters import RankingFilter
from reports.models import AttainmentTotal, PendingRefresh
from reports.tables import RankingTable
from reports.views import filter_fields_html
from tests.factories import DistrictFactory
from tests.reports.conftest import D, enroll

MAX_QUERIES = 8


@pytest.fixture
def snapshots(march_enrollments, stock_campaign, province, django_capture_on_commit_callbacks, celery_eager):
    for n in range(6):  # enough units for the bar charts and a ranking of several rows
        unit = DistrictFactory(province=province, code=f"96{n:02d}", name=f"Huyện Đếm {n}")
        enroll(unit=unit, on=D(2024, 3, 15 + n))
    with django_capture_on_commit_callbacks(execute=True):  # the stored breakdowns' task, after the commit
        engine.snapshot_rebuild(campaigns=[march_enrollments, stock_campaign], as_of=D(2024, 3, 25))
    return march_enrollments, stock_campaign


@pytest.mark.parametrize("who", ["manager_user", "staff_user", "admin_user"])
def test_the_dashboard_and_the_api_stay_within_8_queries(
    client, snapshots, who, request, unit, django_assert_max_num_queries
):
    client.force_login(request.getfixturevalue(who))
    PendingRefresh.objects.create(campaign=snapshots[0], unit=unit, marked_at=snapshots[0].created_at)
    for campaign in snapshots:
        for url in (
            reverse("reports:campaign_dashboard", kwargs={"slug": campaign.slug}),
            reverse("api:campaign_attainment", kwargs={"slug": campaign.slug}),
        ):
            with django_assert_max_num_queries(MAX_QUERIES):
                response = client.get(url)
            assert response.status_code == 200, url


def test_the_dashboard_reads_the_stored_breakdown_not_the_enrollments(
    client, snapshots, manager_user, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(manager_user)
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("reports:campaign_dashboard", kwargs={"slug": snapshots[0].slug}))
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "participants_enrollment" not in sql and "participants_participant" not in sql
    assert "reports_attainmentbreakdown" in sql


def test_the_freshness_line_and_warnings_survive_the_folded_queries(client, snapshots, manager_user, unit):
    client.force_login(manager_user)
    url = reverse("reports:campaign_dashboard", kwargs={"slug": snapshots[0].slug})
    body = client.get(url).content.decode()
    assert "25/03/2024" in body
    PendingRefresh.objects.create(campaign=snapshots[0], unit=unit, marked_at=snapshots[0].created_at)
    assert 'data-testid="stale-warning"' in client.get(url).content.decode()


@pytest.mark.parametrize("sort", [None, "-attained_pct", "unit", "-projected_at_end"])
def test_the_fast_ranking_matches_django_tables2(snapshots, manager_user, sort):
    campaign = snapshots[0]
    request = RequestFactory().get("/", {"sort": sort} if sort else {})
    request.user = manager_user
    rows = list(selectors.unit_rows(manager_user, campaign))
    table = RankingTable(rows, campaign=campaign)
    RequestConfig(request, paginate={"per_page": 100}).configure(table)

    def cells(markup):
        markup = re.sub(r"\s+", " ", str(markup))
        return [re.sub(r"\s*(<|>)\s*", r"\1", c) for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", markup)]

    fast, slow = cells(table.fast_html()), cells(table.as_html(request))
    assert len(fast) > 30
    assert fast == slow


def test_the_kept_fragments_follow_every_new_snapshot(client, snapshots, manager_user, unit):
    campaign = snapshots[0]
    client.force_login(manager_user)
    url = reverse("reports:campaign_dashboard", kwargs={"slug": campaign.slug})

    def ranking_and_charts(body):
        """The ranking's markup and the ids of the snapshot's charts (the breakdown's, read each time, left out)."""
        ranking = re.search(r'aria-labelledby="ranking-title".*?</section>', body, re.S).group(0)
        charts = body[: body.index('aria-labelledby="breakdown-title"')]
        return ranking, re.findall(r'data-plotly-figure="(chart-[0-9a-f]+)"', charts)

    first = ranking_and_charts(client.get(url).content.decode())
    again = ranking_and_charts(client.get(url).content.decode())
    assert again == first  # the same snapshot: the kept markup, charts included
    sorted_page = ranking_and_charts(client.get(url, {"sort": "-attained_pct"}).content.decode())
    assert sorted_page[0] != first[0]  # another query string: its own fragments

    enroll(unit=unit, on=D(2024, 3, 22))
    enroll(unit=unit, on=D(2024, 3, 23))
    engine.snapshot_rebuild(campaigns=[campaign], as_of=D(2024, 3, 25), unit_ids={campaign.pk: {unit.pk}})
    after = ranking_and_charts(client.get(url).content.decode())
    assert after[1] != first[1]  # rebuilt for the new snapshot
    assert after[0] != first[0]


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"sort": "-attained_pct"},
        {"scheme": "vsi", "unit_name": 'Huyện <b>"&'},
        {"on_track": "no", "unit_name": ""},
        {"scheme": "bogus"},  # an invalid choice: the form's own markup, marked invalid
        {"on_track": "<x>"},
    ],
)
def test_the_filter_fields_written_directly_match_the_forms(params, language):
    request = RequestFactory().get("/", params)
    with translation.override(language):
        form = RankingFilter(request.GET, queryset=AttainmentTotal.objects.none())
        expected = render_to_string("reports/inc/ranking_filter_fields.html", {"filter": form})
        assert filter_fields_html(request.GET) == expected
