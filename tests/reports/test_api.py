import pytest
from django.urls import reverse

from reports import engine
from reports.api import FIGURES, STOCK_FIGURES
from tests.reports.conftest import D


@pytest.fixture
def snapshot(march_enrollments):
    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 20))
    return march_enrollments


def attainment_url(campaign, **params):
    url = reverse("api:campaign_attainment", kwargs={"slug": campaign.slug})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def test_it_lists_the_users_campaigns_with_their_slugs(client, manager_user, snapshot, foreign_unit):
    from tests.factories import CampaignFactory

    foreign = CampaignFactory(province=foreign_unit.province, slug="foreign-one")
    client.force_login(manager_user)
    data = client.get(reverse("api:campaign_list")).json()
    slugs = [c["slug"] for c in data["campaigns"]]
    assert slugs == [snapshot.slug]
    assert foreign.slug not in slugs


def test_the_attainment_has_every_figure_under_the_design_names(client, manager_user, snapshot, unit):
    client.force_login(manager_user)
    data = client.get(attainment_url(snapshot)).json()
    assert data["as_of"] == "2024-03-20"
    assert data["computed_at"]
    vsi = data["province"]["vsi"]
    assert set(FIGURES) | {"computed_at"} <= set(vsi)
    assert vsi["attained_pct"] == 16.0 and vsi["enrolled"] == 4 and vsi["target"] == 25
    (row,) = [u for u in data["units"] if u["unit_code"] == unit.code and u["scheme"] == "vsi"]
    assert row == {
        **row,
        "target": 10,
        "enrolled": 2,
        "new": 1,
        "resumed": 1,
        "attained_pct": 20.0,
        "remaining": 8,
        "days_left": 12,
        "required_daily_pace": 0.67,
        "current_daily_pace": 0.29,
        "projected_at_end": 5.14,
        "on_track": False,
        "rank": 1,
    }
    assert "active" not in row


def test_another_as_of_is_computed_live_and_agrees_with_a_snapshot_of_that_day(client, manager_user, snapshot, unit):
    client.force_login(manager_user)
    live = client.get(attainment_url(snapshot, as_of="2024-03-31")).json()
    engine.snapshot_rebuild(campaigns=[snapshot], as_of=D(2024, 3, 31))
    stored = client.get(attainment_url(snapshot, as_of="2024-03-31")).json()

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "computed_at"} for r in rows]

    assert strip(live["units"]) == strip(stored["units"])
    assert {k: v for k, v in live["province"]["vsi"].items() if k != "computed_at"} == {
        k: v for k, v in stored["province"]["vsi"].items() if k != "computed_at"
    }
    (row,) = [u for u in live["units"] if u["unit_code"] == unit.code and u["scheme"] == "vsi"]
    assert (row["enrolled"], row["days_left"]) == (3, 1)


def test_the_dashboard_and_the_api_show_the_same_figures(client, manager_user, snapshot):
    client.force_login(manager_user)
    data = client.get(attainment_url(snapshot)).json()
    body = client.get(reverse("reports:campaign_dashboard", kwargs={"slug": snapshot.slug})).content.decode()
    province = data["province"]["vsi"]
    assert f"{province['attained_pct']:.2f}%".replace(".", ",") in body
    assert f"{province['required_daily_pace']:.2f}".replace(".", ",") in body


def test_a_staff_user_gets_their_unit_only(client, staff_user, snapshot, unit, other_unit):
    client.force_login(staff_user)
    data = client.get(attainment_url(snapshot)).json()
    assert data["province"] is None
    assert {u["unit_code"] for u in data["units"]} == {unit.code}
    live = client.get(attainment_url(snapshot, as_of="2024-03-25")).json()
    assert live["province"] is None
    assert {u["unit_code"] for u in live["units"]} == {unit.code}


def test_another_province_gets_404_and_strangers_401(client, foreign_admin_user, snapshot):
    client.force_login(foreign_admin_user)
    assert client.get(attainment_url(snapshot)).status_code == 404
    assert client.get(reverse("api:campaign_list")).json() == {"campaigns": []}
    client.logout()
    response = client.get(attainment_url(snapshot))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert client.get(reverse("api:campaign_list")).status_code == 401


def test_a_bad_as_of_is_a_400_with_a_message(client, manager_user, snapshot):
    client.force_login(manager_user)
    response = client.get(attainment_url(snapshot, as_of="20/03/2024"))
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.json()["error"]


def test_stock_campaigns_carry_the_stock_figures(client, manager_user, stock_campaign):
    engine.snapshot_rebuild(campaigns=[stock_campaign], as_of=D(2024, 10, 15))
    client.force_login(manager_user)
    province = client.get(attainment_url(stock_campaign)).json()["province"]["vsi"]
    assert set(STOCK_FIGURES) <= set(province)
    assert (province["active"], province["change_vs_prev_month"], province["change_vs_prev_month_pct"]) == (5, 1, 25.0)
    assert province["change_vs_year_end_pct"] == 66.67


def test_the_openapi_document_describes_both_paths(client):
    for name in ("api:openapi", "api:schema"):
        doc = client.get(reverse(name)).json()
        assert doc["openapi"].startswith("3.")
        assert set(doc["paths"]) == {"/campaigns/", "/campaigns/{slug}/attainment/"}
        props = doc["components"]["schemas"]["Figures"]["properties"]
        assert set(FIGURES) | set(STOCK_FIGURES) | {"computed_at"} <= set(props)
