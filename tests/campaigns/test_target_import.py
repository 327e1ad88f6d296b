"""The target spreadsheet import through the browser: template round trip, preview, confirm, matching, every kind of
problem, atomicity, idempotency and the history it leaves."""

import datetime
import io

import openpyxl
import pytest
from django.urls import reverse
from django.utils import translation

from campaigns import importing
from campaigns.models import Target, TargetImport
from participants.models import Scheme
from tests.campaigns.conftest import HEADERS_EN, HEADERS_VI, csv_bytes, upload, xlsx_bytes
from tests.factories import DistrictFactory, TargetFactory


@pytest.fixture(autouse=True)
def _english_messages():
    """Service-level messages are checked in English here; the pages are checked in Vietnamese, the default."""
    with translation.override("en"):
        yield


def _post_file(client, campaign, data, name):
    return client.post(reverse("campaigns:target_import", args=[campaign.slug]), {"file": upload(data, name)})


def _preview_of(client, campaign, data, name="chi-tieu.xlsx"):
    """Uploads a file and returns (the preview page response, the pending import)."""
    response = _post_file(client, campaign, data, name)
    assert response.status_code == 302, response.content.decode()[:2000]
    pending = TargetImport.objects.get(campaign=campaign, applied_at__isnull=True)
    return client.get(response.url), pending


def _confirm(client, campaign, pending):
    return client.post(reverse("campaigns:target_import_preview", args=[campaign.slug, pending.pk]))


def _targets(campaign):
    return {(t.unit.code if t.unit else None, t.scheme): t.value for t in Target.objects.filter(campaign=campaign)}


def test_a_downloaded_template_filled_in_with_openpyxl_imports_after_preview_and_confirmation(
    client, admin_user, campaign, unit, other_unit, province
):
    client.force_login(admin_user)
    response = client.get(reverse("campaigns:target_template_xlsx", args=[campaign.slug]))
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.xlsx"')
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = workbook.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == HEADERS_VI
    assert [r[:2] for r in rows[1:]] == [
        (unit.code, unit.name),
        (other_unit.code, other_unit.name),
        (province.code, province.name),
    ]
    assert workbook.worksheets[1].title == "Hướng dẫn"
    sheet["C2"], sheet["D2"] = 20, 30
    sheet["C3"], sheet["D3"] = 25, 35
    sheet["C4"], sheet["D4"] = 1350, 1650
    filled = io.BytesIO()
    workbook.save(filled)

    page, pending = _preview_of(client, campaign, filled.getvalue(), "chi-tieu-thang-3.xlsx")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="preview-ok"' in html
    assert "Xác nhận và nhập" in html
    assert "Huyện Yên Thử (9221)" in html
    assert "1.350" in html  # Vietnamese thousands separator
    assert Target.objects.filter(campaign=campaign).count() == 0  # the preview saves nothing

    response = _confirm(client, campaign, pending)
    assert response.status_code == 302
    assert _targets(campaign) == {
        (unit.code, "vsi"): 20,
        (unit.code, "hi_family"): 30,
        (other_unit.code, "vsi"): 25,
        (other_unit.code, "hi_family"): 35,
        (None, "vsi"): 1350,
        (None, "hi_family"): 1650,
    }
    pending.refresh_from_db()
    assert pending.applied_at is not None
    assert pending.summary == {"new": 6, "changed": 0, "unchanged": 0}


def test_the_template_carries_current_targets_and_round_trips_unchanged(client, admin_user, campaign, unit):
    TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=77)
    client.force_login(admin_user)
    data = client.get(reverse("campaigns:target_template_xlsx", args=[campaign.slug])).content
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    assert sheet["C2"].value == 77
    page, pending = _preview_of(client, campaign, data)
    assert "Nhập tệp này sẽ không thay đổi gì." in page.content.decode()
    assert importing.build_preview(campaign, importing.Table.from_json(pending.table)).counts == {
        "new": 0,
        "changed": 0,
        "unchanged": 1,
    }


def test_the_csv_template_has_a_bom_vietnamese_headers_and_reads_back(client, admin_user, campaign, unit):
    client.force_login(admin_user)
    response = client.get(reverse("campaigns:target_template_csv", args=[campaign.slug]))
    assert response.content.startswith(b"\xef\xbb\xbf")
    text = response.content.decode("utf-8-sig")
    assert text.splitlines()[0] == ",".join(HEADERS_VI)
    assert f"{unit.code},{unit.name}," in text
    table = importing.read_table(response.content, "t.csv")
    assert [r["cells"]["unit_code"] for r in table.rows][0] == unit.code


def test_the_preview_shows_old_and_new_values_and_confirming_changes_only_what_differs(
    client, admin_user, campaign, unit, other_unit
):
    TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=20)
    TargetFactory(campaign=campaign, unit=other_unit, scheme=Scheme.VSI, value=25)
    client.force_login(admin_user)
    data = csv_bytes([HEADERS_EN, [unit.code, "", 20, ""], [other_unit.code, "", 40, 12]])
    page, pending = _preview_of(client, campaign, data, "t.csv")
    html = page.content.decode()
    assert "25 → <strong>40</strong>" in html
    assert "— → <strong>12</strong>" in html
    _confirm(client, campaign, pending)
    assert _targets(campaign) == {
        (unit.code, "vsi"): 20,
        (other_unit.code, "vsi"): 40,
        (other_unit.code, "hi_family"): 12,
    }


def test_importing_the_same_file_twice_changes_nothing_the_second_time(client, admin_user, campaign, unit):
    client.force_login(admin_user)
    data = csv_bytes([HEADERS_EN, [unit.code, "", 20, 30]])
    _page, pending = _preview_of(client, campaign, data, "t.csv")
    _confirm(client, campaign, pending)
    history_rows = Target.history.count()

    page, pending = _preview_of(client, campaign, data, "t.csv")
    html = page.content.decode()
    assert "Xác nhận và nhập" not in html  # nothing to confirm
    assert importing.build_preview(campaign, importing.Table.from_json(pending.table)).counts["unchanged"] == 2
    _confirm(client, campaign, pending)
    assert _targets(campaign) == {(unit.code, "vsi"): 20, (unit.code, "hi_family"): 30}
    assert Target.history.count() == history_rows


def test_each_change_is_in_the_history_with_the_importer_and_the_file_name(client, admin_user, campaign, unit):
    client.force_login(admin_user)
    _page, pending = _preview_of(client, campaign, csv_bytes([HEADERS_EN, [unit.code, "", 20, 30]]), "dot-1.csv")
    _confirm(client, campaign, pending)
    _page, pending = _preview_of(client, campaign, csv_bytes([HEADERS_EN, [unit.code, "", 21, 30]]), "dot-2.csv")
    _confirm(client, campaign, pending)

    vsi = Target.objects.get(campaign=campaign, unit=unit, scheme=Scheme.VSI)
    entries = list(vsi.history.order_by("history_date"))
    assert [(e.value, e.history_type, e.history_user, e.history_change_reason) for e in entries] == [
        (20, "+", admin_user, "import: dot-1.csv"),
        (21, "~", admin_user, "import: dot-2.csv"),
    ]
    hi = Target.objects.get(campaign=campaign, unit=unit, scheme=Scheme.HI_FAMILY)
    assert hi.history.count() == 1  # unchanged in the second file: no history entry


def test_one_bad_row_saves_nothing_at_all(client, admin_user, campaign, unit, other_unit):
    TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=5)
    client.force_login(admin_user)
    data = csv_bytes([HEADERS_EN, [unit.code, "", 20, 30], [other_unit.code, "", -1, 30]])
    page, pending = _preview_of(client, campaign, data, "t.csv")
    assert 'data-testid="preview-errors"' in page.content.decode()
    response = _confirm(client, campaign, pending)  # a forged confirmation is refused too
    assert response.status_code == 200
    assert _targets(campaign) == {(unit.code, "vsi"): 5}
    pending.refresh_from_db()
    assert pending.applied_at is None


def test_a_confirmation_revalidates_and_saves_no_row_when_the_data_changed_since_the_preview(
    admin_user, campaign, unit, other_unit
):
    """The first row is still fine, the second no longer is: neither is written."""
    table = importing.read_table(csv_bytes([HEADERS_EN, [unit.code, "", 20, 30], [other_unit.code, "", 25, 35]]))
    other_unit.province = DistrictFactory(code="X-1").province  # moves the unit away between preview and write
    other_unit.save()
    with pytest.raises(importing.ImportInvalid):
        importing.import_apply(campaign=campaign, table=table, user=admin_user, file_name="t.csv")
    assert Target.objects.filter(campaign=campaign).count() == 0


@pytest.mark.parametrize(
    "written",
    ["Huyện Yên Thử", "huyen yen thu", "Yên Thử", "YEN THU", "  yên   thử ", "H. Yên Thử", "Yen Thu"],
)
def test_a_unit_is_found_by_its_name_ignoring_case_diacritics_and_prefixes(campaign, unit, written):
    preview = importing.build_preview(campaign, importing.read_table(csv_bytes([HEADERS_EN, ["", written, 1, 2]])))
    assert preview.is_valid, preview.problems
    assert preview.rows[0].unit == unit


@pytest.mark.parametrize(
    "written", ["Thành phố Đồng Thử", "TP. Đồng Thử", "Tp Dong Thu", "dong thu", "Thị xã Đồng Thử"]
)
def test_city_names_match_with_or_without_their_prefix_and_the_letter_d(campaign, province, written):
    city = DistrictFactory(province=province, code="9213", name="Thành phố Đồng Thử", kind="provincial_city")
    preview = importing.build_preview(campaign, importing.read_table(csv_bytes([HEADERS_EN, ["", written, 1, 2]])))
    assert preview.rows[0].unit == city, preview.problems


def test_a_full_name_tells_apart_two_units_that_share_a_short_name(campaign, province):
    town = DistrictFactory(province=province, code="9231", name="Thị xã Long Thử", kind="town")
    district = DistrictFactory(province=province, code="9232", name="Huyện Long Thử")
    rows = [HEADERS_EN, ["", "Thị xã Long Thử", 1, 1], ["", "huyen long thu", 2, 2], ["", "Long Thử", 3, 3]]
    preview = importing.build_preview(campaign, importing.read_table(csv_bytes(rows)))
    assert [r.unit for r in preview.rows] == [town, district, None]
    assert "give the unit code" in preview.rows[2].problems[0].message


def test_a_code_that_lost_its_leading_zeros_in_excel_still_matches(campaign, province):
    hanoi_unit = DistrictFactory(province=province, code="001", name="Quận Ba Thử", kind="urban_district")
    preview = importing.build_preview(campaign, importing.read_table(xlsx_bytes([HEADERS_VI, [1, "", 5, 6]])))
    assert preview.rows[0].unit == hanoi_unit


def test_the_province_row_sets_the_province_level_target_by_code_or_by_name(campaign, province):
    by_code = importing.build_preview(
        campaign, importing.read_table(csv_bytes([HEADERS_EN, [province.code, "", 9, 9]]))
    )
    by_name = importing.build_preview(
        campaign, importing.read_table(csv_bytes([HEADERS_EN, ["", "tinh bac thu", 9, 9]]))
    )
    assert by_code.rows[0].is_province and by_name.rows[0].is_province


def test_a_city_named_like_its_province_is_matched_by_its_bare_name_and_the_province_by_its_full_name(
    campaign, province
):
    city = DistrictFactory(province=province, code="9213", name="Thành phố Bắc Thử", kind="provincial_city")
    rows = [HEADERS_EN, ["", "Bắc Thử", 1, 1], ["", "Tỉnh Bắc Thử", 2, 2], ["", "TP Bắc Thử", None, 3]]
    preview = importing.build_preview(campaign, importing.read_table(csv_bytes(rows)))
    assert [(r.unit, r.is_province) for r in preview.rows] == [(city, False), (None, True), (city, False)]
    assert "already listed on row 2" in preview.rows[2].problems[0].message


def test_a_province_code_and_a_unit_code_equal_without_leading_zeros_are_told_apart(campaign, province):
    province.code = "01"
    province.save()
    ba_dinh = DistrictFactory(province=province, code="001", name="Quận Ba Thử", kind="urban_district")
    rows = [HEADERS_EN, ["01", "", 1, 1], ["001", "", 2, 2]]
    preview = importing.build_preview(campaign, importing.read_table(csv_bytes(rows)))
    assert [(r.unit, r.is_province) for r in preview.rows] == [(None, True), (ba_dinh, False)]


def test_a_title_above_the_table_and_a_totals_row_below_it_are_tolerated(campaign, unit, other_unit):
    rows = [
        ["CHỈ TIÊU THÁNG VẬN ĐỘNG 3/2024", None, None, None],
        [None, None, None, None],
        HEADERS_VI,
        [unit.code, unit.name, 20, 30],
        [other_unit.code, other_unit.name, 25, 35],
        [None, "Tổng cộng", 45, 65],
    ]
    preview = importing.build_preview(campaign, importing.read_table(xlsx_bytes(rows), "t.xlsx"))
    assert preview.is_valid, preview.problems
    assert [r.status for r in preview.rows] == ["new", "new", "skipped"]
    assert [r.line for r in preview.rows] == [4, 5, 6]
    assert preview.counts["new"] == 4


def test_a_missing_column_is_reported_on_the_header_row_under_a_title(campaign):
    rows = [["Chỉ tiêu"], [], ["Mã đơn vị", "Tên đơn vị", "BHXH tự nguyện"], ["9221", "", 1]]
    preview = importing.build_preview(campaign, importing.read_table(csv_bytes(rows)))
    assert [(p.line, p.column) for p in preview.problems] == [(3, "BHYT hộ gia đình (hi_target)")]


def _problems(campaign, rows):
    preview = importing.build_preview(campaign, importing.read_table(csv_bytes(rows)))
    assert not preview.is_valid
    return [(p.line, p.column, p.message) for p in preview.problems]


def test_an_unknown_unit_is_reported_with_the_closest_names(campaign, unit, other_unit):
    [(line, column, message)] = _problems(campaign, [HEADERS_VI, ["", "Huyện Yên Thủy", 1, 2]])
    assert (line, column) == (2, "Tên đơn vị")
    assert "Huyện Yên Thủy" in message and "Huyện Yên Thử" in message


def test_an_unknown_code_without_a_name_is_reported_on_the_code_column(campaign):
    [(line, column, message)] = _problems(campaign, [HEADERS_VI, ["99999", "", 1, 2]])
    assert (line, column) == (2, "Mã đơn vị") and "99999" in message


def test_a_unit_listed_twice_is_reported_on_its_second_row(campaign, unit):
    [(line, column, message)] = _problems(campaign, [HEADERS_EN, [unit.code, "", 1, 2], ["", "Yên Thử", 3, 4]])
    assert line == 3 and "row 2" in message


@pytest.mark.parametrize(
    ("value", "words"),
    [("-5", "negative"), ("abc", "not a number"), ("12,5", "whole number"), ("=A1*2", "formula"), ("3.7", "whole")],
)
def test_a_bad_target_is_reported_by_row_and_column(campaign, unit, value, words):
    [(line, column, message)] = _problems(campaign, [HEADERS_VI, [unit.code, "", 1, value]])
    assert (line, column) == (2, "BHYT hộ gia đình")
    assert words in message


@pytest.mark.parametrize(("value", "number"), [("1.350", 1350), ("1,350", 1350), ("1 350", 1350), ("20.0", 20)])
def test_numbers_written_with_thousands_separators_are_read_as_whole_numbers(campaign, unit, value, number):
    preview = importing.build_preview(
        campaign, importing.read_table(csv_bytes([HEADERS_EN, [unit.code, "", value, 1]]))
    )
    assert preview.rows[0].changes[0].new == number


def test_a_unit_of_another_province_is_refused_by_code_and_by_name(campaign, foreign_unit):
    [(_, _, by_code)] = _problems(campaign, [HEADERS_EN, [foreign_unit.code, "", 1, 2]])
    [(_, _, by_name)] = _problems(campaign, [HEADERS_EN, ["", "Xa Thử", 1, 2]])
    assert "Tỉnh Nam Thử" in by_code and "Tỉnh Nam Thử" in by_name


def test_a_unit_that_did_not_exist_during_the_window_is_refused(campaign, province):
    DistrictFactory(province=province, code="9299", name="Huyện Mới Thử", valid_from=datetime.date(2025, 7, 1))
    [(_, _, message)] = _problems(campaign, [HEADERS_EN, ["9299", "", 1, 2]])
    assert "did not exist" in message


def test_a_merged_unit_that_existed_during_the_window_can_still_get_targets(campaign, province):
    merged = DistrictFactory(province=province, code="9298", name="Huyện Cũ Thử", ceased_on=datetime.date(2024, 12, 31))
    preview = importing.build_preview(campaign, importing.read_table(csv_bytes([HEADERS_EN, ["", "Cũ Thử", 1, 2]])))
    assert preview.rows[0].unit == merged and preview.is_valid


def test_a_missing_column_is_named_in_both_languages(campaign, unit):
    problems = _problems(campaign, [["unit_code", "vsi_target"], [unit.code, 1]])
    assert problems == [(1, "BHYT hộ gia đình (hi_target)", "This column is missing.")]


def test_the_preview_page_lists_problems_with_row_and_column(client, admin_user, campaign, unit):
    client.force_login(admin_user)
    page, _pending = _preview_of(client, campaign, csv_bytes([HEADERS_VI, [unit.code, "", "abc", 1]]), "t.csv")
    html = page.content.decode()
    assert "Dòng 2, cột “BHXH tự nguyện”: “abc” không phải là số" in html
    assert "Xác nhận và nhập" not in html


def test_an_upload_can_be_confirmed_only_by_the_admin_who_uploaded_it(client, admin_user, campaign, unit, province):
    from districts.scoping import ROLE_ADMIN
    from tests.factories import make_user

    colleague = make_user(ROLE_ADMIN, province=province, username="admin-colleague")
    client.force_login(admin_user)
    _page, pending = _preview_of(client, campaign, csv_bytes([HEADERS_EN, [unit.code, "", 1, 2]]), "t.csv")
    client.force_login(colleague)
    assert client.get(reverse("campaigns:target_import_preview", args=[campaign.slug, pending.pk])).status_code == 404
    assert _confirm(client, campaign, pending).status_code == 404
    assert Target.objects.filter(campaign=campaign).count() == 0


def test_a_rejected_file_shows_its_message_on_the_upload_page_and_stores_nothing(client, admin_user, campaign):
    client.force_login(admin_user)
    response = _post_file(client, campaign, b"not a workbook at all", "t.xlsx")
    assert response.status_code == 200
    assert "thực ra không phải bảng tính Excel" in response.content.decode()
    assert TargetImport.objects.count() == 0
