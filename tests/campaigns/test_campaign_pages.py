"""Campaign pages: the list, create and edit, the targets grid with its sums, and who may see or change what."""

import datetime

import pytest
from django.urls import reverse

from campaigns.models import Campaign, Target, TargetImport
from districts.scoping import ROLE_ADMIN, ROLE_MANAGER
from participants.models import Scheme
from tests.campaigns.conftest import HEADERS_EN, csv_bytes, upload
from tests.factories import CampaignFactory, DistrictFactory, TargetFactory, UserFactory, make_user


def test_the_list_shows_the_admins_province_campaigns_only_in_a_fixed_number_of_queries(
    client, admin_user, campaign, foreign_campaign, province, django_assert_max_num_queries
):
    for n in range(5):
        c = CampaignFactory(province=province, slug=f"extra-{n}", name=f"Chiến dịch phụ {n}")
        TargetFactory(campaign=c, unit=DistrictFactory(province=province, code=f"95{n}"), value=n)
    client.force_login(admin_user)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("campaigns:campaign_list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert campaign.name in html and "Chiến dịch phụ 4" in html
    assert foreign_campaign.name not in html
    assert reverse("campaigns:campaign_create") in html


def test_home_sends_an_admin_to_the_campaign_list(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response.url == reverse("campaigns:campaign_list")


def test_an_admin_creates_a_campaign_in_their_own_province_whatever_the_form_says(
    client, admin_user, province, other_province
):
    client.force_login(admin_user)
    response = client.post(
        reverse("campaigns:campaign_create"),
        {
            "province": other_province.pk,
            "name": "Đợt cao điểm tháng 4–5",
            "slug": "",
            "start_date": "2024-04-01",
            "end_date": "2024-05-31",
            "status": "active",
            "measure": "window",
        },
    )
    assert response.status_code == 302
    created = Campaign.objects.get(name="Đợt cao điểm tháng 4–5")
    assert created.province == province
    assert created.slug == "dot-cao-diem-thang-45"


def test_a_superuser_picks_the_province(client, other_province):
    root = UserFactory(username="root")
    root.is_superuser = root.is_staff = True
    root.save()
    client.force_login(root)
    data = {"province": other_province.pk, "name": "Kế hoạch năm 2024", "slug": "ke-hoach-2024"}
    data |= {"start_date": "2024-01-01", "end_date": "2024-12-31", "status": "draft", "measure": "stock"}
    assert client.post(reverse("campaigns:campaign_create"), data).status_code == 302
    assert Campaign.objects.get(slug="ke-hoach-2024").province == other_province


def test_a_campaign_cannot_end_before_it_starts_or_reuse_a_slug(client, admin_user, campaign):
    client.force_login(admin_user)
    data = {"name": "Sai", "slug": campaign.slug, "start_date": "2024-05-01", "end_date": "2024-04-01"}
    data |= {"status": "draft", "measure": "window"}
    response = client.post(reverse("campaigns:campaign_create"), data)
    assert response.status_code == 200
    form = response.context["form"]
    assert "end_date" in form.errors and "slug" in form.errors
    assert not Campaign.objects.filter(name="Sai").exists()


def test_an_admin_edits_a_campaign_but_not_its_province(client, admin_user, campaign, other_province):
    client.force_login(admin_user)
    data = {"province": other_province.pk, "name": "Tên mới", "slug": campaign.slug, "start_date": "2024-03-14"}
    data |= {"end_date": "2024-04-14", "status": "closed", "measure": "window"}
    response = client.post(reverse("campaigns:campaign_edit", args=[campaign.slug]), data)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.end_date, campaign.status) == ("Tên mới", datetime.date(2024, 4, 14), "closed")
    assert campaign.province.code == "924"


def test_the_grid_saves_unit_and_province_targets_with_history(client, admin_user, campaign, unit, other_unit):
    TargetFactory(campaign=campaign, unit=other_unit, scheme=Scheme.HI_FAMILY, value=9)
    client.force_login(admin_user)
    url = reverse("campaigns:campaign_targets", args=[campaign.slug])
    page = client.get(url)
    assert page.status_code == 200
    data = {f"t_{unit.pk}_vsi": "20", f"t_{unit.pk}_hi_family": "30", f"t_{other_unit.pk}_vsi": "25"}
    data |= {f"t_{other_unit.pk}_hi_family": "", "p_vsi": "260", "p_hi_family": ""}
    response = client.post(url, data)
    assert response.status_code == 302
    values = {(t.unit_id, t.scheme): t.value for t in Target.objects.filter(campaign=campaign)}
    assert values == {(unit.pk, "vsi"): 20, (unit.pk, "hi_family"): 30, (other_unit.pk, "vsi"): 25, (None, "vsi"): 260}
    removed = Target.history.filter(unit_id=other_unit.pk, scheme="hi_family").latest("history_date")
    assert (removed.history_type, removed.history_user) == ("-", admin_user)


def test_the_grid_refuses_negative_and_decimal_targets_and_saves_nothing(client, admin_user, campaign, unit):
    client.force_login(admin_user)
    url = reverse("campaigns:campaign_targets", args=[campaign.slug])
    response = client.post(url, {f"t_{unit.pk}_vsi": "-1", f"t_{unit.pk}_hi_family": "2.5", "p_vsi": "10"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not Target.objects.filter(campaign=campaign).exists()


def test_the_page_says_when_the_province_target_differs_from_the_sum_of_the_units(
    client, manager_user, campaign, unit, other_unit
):
    TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=20)
    TargetFactory(campaign=campaign, unit=other_unit, scheme=Scheme.VSI, value=30)
    TargetFactory(campaign=campaign, unit=None, scheme=Scheme.VSI, value=1350)
    TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.HI_FAMILY, value=40)
    TargetFactory(campaign=campaign, unit=None, scheme=Scheme.HI_FAMILY, value=40)
    client.force_login(manager_user)
    html = client.get(reverse("campaigns:campaign_detail", args=[campaign.slug])).content.decode()
    assert "1.350" in html and ">50<" in html
    assert 'data-testid="totals-differ-vsi"' in html
    assert "1.300" in html  # the difference
    assert 'data-testid="totals-differ-hi_family"' not in html


def test_a_manager_sees_the_targets_but_cannot_change_or_import_them(client, manager_user, campaign, unit):
    TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=20)
    client.force_login(manager_user)
    page = client.get(reverse("campaigns:campaign_targets", args=[campaign.slug]))
    html = page.content.decode()
    assert page.status_code == 200
    assert ">20<" in html and 'name="t_' not in html and 'name="p_' not in html
    assert (
        client.post(reverse("campaigns:campaign_targets", args=[campaign.slug]), {f"t_{unit.pk}_vsi": "99"}).status_code
        == 403
    )
    for name in ("campaign_edit", "target_import", "target_template_xlsx", "target_template_csv"):
        assert client.get(reverse(f"campaigns:{name}", args=[campaign.slug])).status_code == 403, name
    response = client.post(
        reverse("campaigns:target_import", args=[campaign.slug]),
        {"file": upload(csv_bytes([HEADERS_EN, [unit.code, "", 99, 99]]), "t.csv")},
    )
    assert response.status_code == 403
    assert client.get(reverse("campaigns:campaign_create")).status_code == 403
    assert Target.objects.get(campaign=campaign, unit=unit).value == 20
    assert not TargetImport.objects.exists()


def test_a_district_manager_sees_only_their_own_units_row(client, province, unit, other_unit, campaign):
    TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=21)
    TargetFactory(campaign=campaign, unit=other_unit, scheme=Scheme.VSI, value=987)
    district_manager = make_user(ROLE_MANAGER, province=province, unit=unit, username="dm1")
    client.force_login(district_manager)
    html = client.get(reverse("campaigns:campaign_detail", args=[campaign.slug])).content.decode()
    assert unit.name in html and other_unit.name not in html


@pytest.mark.parametrize(
    "name",
    ["campaign_detail", "campaign_targets", "campaign_edit", "target_import", "target_template_xlsx"],
)
def test_staff_are_refused_every_campaign_page(client, staff_user, campaign, name):
    client.force_login(staff_user)
    assert client.get(reverse(f"campaigns:{name}", args=[campaign.slug])).status_code == 403
    assert client.get(reverse("campaigns:campaign_list")).status_code == 403


@pytest.mark.parametrize(
    "name",
    [
        "campaign_detail",
        "campaign_targets",
        "campaign_edit",
        "target_import",
        "target_template_xlsx",
        "target_template_csv",
    ],
)
def test_an_admin_of_another_province_gets_404_for_every_page_of_the_campaign(
    client, foreign_admin_user, campaign, name
):
    client.force_login(foreign_admin_user)
    assert client.get(reverse(f"campaigns:{name}", args=[campaign.slug])).status_code == 404


def test_an_admin_of_another_province_cannot_import_into_the_campaign(client, foreign_admin_user, campaign, unit):
    client.force_login(foreign_admin_user)
    response = client.post(
        reverse("campaigns:target_import", args=[campaign.slug]),
        {"file": upload(csv_bytes([HEADERS_EN, [unit.code, "", 1, 1]]), "t.csv")},
    )
    assert response.status_code == 404
    assert not Target.objects.exists() and not TargetImport.objects.exists()


def test_an_anonymous_visitor_is_sent_to_sign_in(client, campaign):
    response = client.get(reverse("campaigns:campaign_detail", args=[campaign.slug]))
    assert response.status_code == 302 and reverse("login") in response.url


def test_the_grid_lists_units_of_the_window_and_those_with_targets_only(client, admin_user, campaign, province):
    DistrictFactory(province=province, code="9290", name="Huyện Sau Thử", valid_from=datetime.date(2025, 7, 1))
    gone = DistrictFactory(province=province, code="9291", name="Huyện Trước Thử", ceased_on=datetime.date(2023, 1, 1))
    TargetFactory(campaign=campaign, unit=gone, scheme=Scheme.VSI, value=1)
    admin = make_user(ROLE_ADMIN, province=province, username="admin-grid")
    client.force_login(admin)
    html = client.get(reverse("campaigns:campaign_targets", args=[campaign.slug])).content.decode()
    assert "Huyện Sau Thử" not in html
    assert "Huyện Trước Thử" in html


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def _add_units(campaign, province, start, count):
    units = [DistrictFactory(province=province, code=f"96{n:02d}", name=f"Huyện Số {n}") for n in range(start, count)]
    for unit in units:
        TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=10)
    return units


def _import_preview_url(client, campaign, units):
    rows = [HEADERS_EN] + [[u.code, "", 11, 12] for u in units]
    response = client.post(
        reverse("campaigns:target_import", args=[campaign.slug]), {"file": upload(csv_bytes(rows), "t.csv")}
    )
    return response.url


def test_the_grid_detail_and_import_preview_queries_do_not_grow_with_the_number_of_units(
    client, admin_user, campaign, province
):
    client.force_login(admin_user)
    pages = [reverse(f"campaigns:{name}", args=[campaign.slug]) for name in ("campaign_targets", "campaign_detail")]
    few = _add_units(campaign, province, 0, 3)
    before = [_queries(client, url) for url in pages] + [_queries(client, _import_preview_url(client, campaign, few))]
    many = few + _add_units(campaign, province, 3, 40)
    after = [_queries(client, url) for url in pages] + [_queries(client, _import_preview_url(client, campaign, many))]
    assert after == before
    assert max(after) <= 20
    page = client.get(_import_preview_url(client, campaign, many))
    assert page.content.decode().count("10 → <strong>11</strong>") == 40
