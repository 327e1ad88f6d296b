"""The three daily journeys, driven in Chromium against the live server.

Each runs on a desktop in Vietnamese and on a phone (390 × 844) in English; test_main_pages.py covers the other two
combinations of every main page (desktop in English, phone in Vietnamese) for screenshots, axe-core, width and
language. Every main page a journey reaches is screenshotted, checked by axe-core (0 serious or critical violations),
for sideways overflow and, in Vietnamese, for English left on the page."""

import datetime
import re

import openpyxl
import pytest
from django.utils import timezone

from campaigns.models import Campaign, Target
from participants.models import Enrollment, Participant, Scheme
from reports.models import RecomputeRun
from tests.browser.pages import check_page
from tests.browser.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JOURNEY_COMBOS = ["desktop-vi", "phone-en"]
PASSWORD = "correct-horse-battery"


def vi(session, vietnamese, english):
    return vietnamese if session.language == "vi" else english


def number(session, value):
    """An integer as the page writes it in the session's language: 12.500 in Vietnamese, 12,500 in English."""
    return f"{value:,}".replace(",", "." if session.language == "vi" else ",")


# ----------------------------------------------------------------------------------------------------- staff


def _type_enrollment(s, *, si, name=None, dob=None, gender=None, commune=False):
    """Fills the entry form from the SI number on, with the keyboard only; the cursor starts in the SI number."""
    page = s.page
    assert page.evaluate("() => document.activeElement.id") == "id_si_number"
    with page.expect_response(re.compile(r"/enrollments/new/person/")):
        page.keyboard.type(si)
        if len(si) != 10:
            page.keyboard.press("Tab")  # a short number is looked up when the field is left
    if len(si) == 10:
        page.keyboard.press("Tab")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'id_full_name'")
    if name is not None:
        page.keyboard.press("Control+A")
        page.keyboard.type(name)
    page.keyboard.press("Tab")
    if dob is not None:
        page.keyboard.press("Control+A")
        page.keyboard.type(dob)
    page.keyboard.press("Tab")
    if gender == "female":
        page.keyboard.press("ArrowDown")  # male comes first; the arrow picks the next option of a closed drop-down
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "id_commune"
    if commune and page.input_value("#id_commune") == "":
        page.keyboard.press("ArrowDown")  # the unit's first commune (the form keeps it for the next entry)


def _submit(s):
    with s.page.expect_navigation():
        s.page.keyboard.press("Enter")


def _saved(s):
    """The confirmation of a save; when missing, the form's messages say why."""
    if not s.page.locator("#saved").is_visible():
        errors = s.page.locator("#form-errors, .invalid-feedback").all_inner_texts()
        pytest.fail(f"not saved: {errors}")


@pytest.mark.parametrize("browser_session", JOURNEY_COMBOS, indirect=True)
def test_a_staff_officer_records_with_the_keyboard_uploads_a_list_and_finds_it_in_the_table(
    browser_session, staff_user, commune, tmp_path
):
    s = browser_session
    page = s.page
    today = timezone.localdate().strftime("%d/%m/%Y")
    male, female = "male", "female"
    s.login("staff1", PASSWORD)
    assert page.url.endswith("/enrollments/new/")
    assert page.get_by_text("Huyện Yên Thử").first.is_visible()  # the officer's unit, in the navigation bar
    problems = check_page(s, "entry")

    # 1. A new person.
    _type_enrollment(s, si="2401000001", name="Phạm Văn Bình", dob="12/04/1980", gender=male, commune=True)
    _submit(s)
    _saved(s)
    first = Enrollment.objects.get(participant__si_number="2401000001")
    assert first.commune == commune and first.participant.gender == Participant.Gender.MALE
    assert first.enrolled_on == timezone.localdate()
    problems += check_page(s, "entry-saved")

    # 2. A mistyped SI number: refused next to its field, corrected, saved.
    _type_enrollment(s, si="24010", name="Đỗ Thị Lan", dob="03/09/1975", gender=female)
    assert page.get_by_text(re.compile("10")).first.is_visible()  # "exactly 10 digits", said when the field is left
    _submit(s)
    field = page.locator("#id_si_number")
    assert "is-invalid" in field.get_attribute("class")
    assert page.evaluate("() => document.activeElement.id") == "id_si_number"  # the cursor is back on it
    # The message sits under the field and is tied to it, so a screen reader reads it with the field.
    described = [page.locator(f"#{i}") for i in (field.get_attribute("aria-describedby") or "").split()]
    errors = [d.inner_text() for d in described if "invalid-feedback" in (d.get_attribute("class") or "")]
    assert errors and "5" in errors[0], errors  # "exactly 10 digits; this one has 5"
    problems += check_page(s, "entry-error")
    page.keyboard.press("Control+A")
    page.keyboard.type("2401000002")
    _submit(s)
    _saved(s)
    assert Participant.objects.get(si_number="2401000002").full_name == "Đỗ Thị Lan"

    # 3. The first person again, same scheme and dates: refused, with the existing record named and linked.
    _type_enrollment(s, si="2401000001")
    assert page.input_value("#id_full_name") == "Phạm Văn Bình"  # a known person: the details are filled in
    _submit(s)
    alert = page.locator("#form-errors")
    assert alert.is_visible()
    assert str(first.pk) in alert.inner_text() and "Phạm Văn Bình" in alert.inner_text()
    assert alert.locator(f"a[href$='/enrollments/{first.pk}/']").is_visible()
    problems += check_page(s, "entry-duplicate")
    assert Enrollment.objects.filter(participant__si_number="2401000001").count() == 1

    # 4 and 5. Two more people, from a fresh form.
    for si, name in (("2401000003", "Vũ Văn Cường"), ("2401000004", "Hoàng Thị Dung")):
        s.go("/enrollments/new/")
        _type_enrollment(s, si=si, name=name, dob="20/01/1990", gender=female if "Thị" in name else male)
        _submit(s)
        _saved(s)
    assert Enrollment.objects.count() == 4

    # A list of three more, uploaded, checked, confirmed.
    csv = tmp_path / "danh-sach.csv"
    rows = [
        "si_number,full_name,date_of_birth,gender,commune_code,scheme,enrolled_on,coverage_start,months,"
        "collection_agent_code",
        f"2401000011,Ngô Văn Em,01/02/1970,male,{commune.code},vsi,{today},{today},6,",
        f"2401000012,Trịnh Thị Gấm,05/06/1988,female,{commune.code},vsi,{today},{today},12,",
        f"2401000013,Lý Văn Hải,07/08/1992,male,{commune.code},hi_family,{today},{today},12,",
    ]
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    s.go("/enrollments/uploads/")
    problems += check_page(s, "upload")
    page.set_input_files("#id_file", str(csv))
    with page.expect_navigation():
        page.locator("form[enctype='multipart/form-data'] button").click()
    page.wait_for_selector("#counts")
    assert page.locator("#creates tbody tr").count() == 3
    problems += check_page(s, "upload-preview")
    assert Enrollment.objects.count() == 4  # nothing saved before the confirmation
    with page.expect_navigation():
        page.locator("form[action$='/confirm/'] button").click()
    assert page.locator(".alert-success").first.is_visible()
    assert Enrollment.objects.count() == 7

    # All seven are in the table, found by the day they were recorded, then one by name.
    s.go("/enrollments/")
    page.fill("#id_enrolled_from", today)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    table = page.locator("table").last
    for name in ("Phạm Văn Bình", "Đỗ Thị Lan", "Vũ Văn Cường", "Hoàng Thị Dung", "Ngô Văn Em", "Trịnh Thị Gấm"):
        assert table.get_by_text(name).is_visible()
    assert table.locator("tbody tr").count() == 7
    problems += check_page(s, "enrollments")
    page.fill("#id_q", "Gấm")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert table.locator("tbody tr").count() == 1
    assert "2401000012" in table.inner_text()
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------------------- admin


@pytest.mark.parametrize("browser_session", JOURNEY_COMBOS, indirect=True)
def test_an_admin_creates_a_campaign_imports_its_targets_and_watches_a_recompute(
    browser_session, admin_user, province, unit, other_unit, commune, other_commune, tmp_path
):
    s = browser_session
    page = s.page
    build_world(
        province=province,
        unit=unit,
        other_unit=other_unit,
        commune=commune,
        other_commune=other_commune,
        snapshot=False,
    )
    today = timezone.localdate()
    s.login("admin1", PASSWORD)
    assert page.url.endswith("/campaigns/")
    problems = check_page(s, "campaigns")

    page.locator("a[href$='/campaigns/new/']").first.click()
    page.wait_for_selector("#id_name")
    problems += check_page(s, "campaign-new")
    page.fill("#id_name", "Đợt cao điểm tháng 12")
    assert page.input_value("#id_slug") == "dot-cao-diem-thang-12"  # made from the name as it is typed
    page.fill("#id_start_date", (today - datetime.timedelta(days=10)).isoformat())
    page.fill("#id_end_date", (today - datetime.timedelta(days=20)).isoformat())  # before the start: refused
    page.select_option("#id_status", Campaign.Status.ACTIVE)
    with page.expect_navigation():
        page.locator("form[method=post] button.btn-primary").click()
    end = page.locator("#id_end_date")
    described = [page.locator(f"#{i}") for i in (end.get_attribute("aria-describedby") or "").split()]
    assert end.get_attribute("aria-invalid") == "true"
    assert any("invalid-feedback" in (d.get_attribute("class") or "") and d.is_visible() for d in described)
    assert not Campaign.objects.filter(slug="dot-cao-diem-thang-12").exists()
    problems += check_page(s, "campaign-new-error")
    page.fill("#id_end_date", (today + datetime.timedelta(days=20)).isoformat())
    with page.expect_navigation():
        page.locator("form[method=post] button.btn-primary").click()
    campaign = Campaign.objects.get(slug="dot-cao-diem-thang-12")
    assert campaign.province == province
    assert page.url.endswith(f"/campaigns/{campaign.slug}/targets/")
    problems += check_page(s, "campaign-targets")

    # The template, downloaded, filled in a spreadsheet program (openpyxl), uploaded.
    s.go(f"/campaigns/{campaign.slug}/targets/import/")
    problems += check_page(s, "target-import")
    template = s.download(page.locator("a[href$='/targets/template.xlsx']"))
    book = openpyxl.load_workbook(template)
    sheet = book.active
    header_row = next(r for r in sheet.iter_rows() if any(c.value == "Mã đơn vị" for c in r))
    columns = {c.value: c.column for c in header_row}
    filled = {unit.code: (1500, 3000), other_unit.code: (700, 1400)}
    for row in sheet.iter_rows(min_row=header_row[0].row + 1):
        code = str(row[columns["Mã đơn vị"] - 1].value or "")
        if code in filled:
            sheet.cell(row=row[0].row, column=columns["BHXH tự nguyện"], value=filled[code][0])
            sheet.cell(row=row[0].row, column=columns["BHYT hộ gia đình"], value=filled[code][1])
    assert sum(1 for r in sheet.iter_rows() if str(r[columns["Mã đơn vị"] - 1].value) in filled) == 2
    filled_path = tmp_path / "chi-tieu.xlsx"
    book.save(filled_path)
    page.set_input_files("input[type=file]", str(filled_path))
    with page.expect_navigation():
        page.locator("form[enctype='multipart/form-data'] button").click()
    ok = page.locator("[data-testid=preview-ok]")
    assert ok.is_visible()
    assert re.search(r"\b4\b", ok.inner_text())  # four new targets
    assert number(s, 1500) in page.locator("table").inner_text()
    problems += check_page(s, "target-preview")
    assert not Target.objects.filter(campaign=campaign).exists()  # nothing saved before the confirmation
    with page.expect_navigation():
        page.locator("form:not([action]) button.btn-primary").click()
    assert Target.objects.get(campaign=campaign, unit=unit, scheme=Scheme.VSI).value == 1500
    assert Target.objects.filter(campaign=campaign).count() == 4
    assert number(s, 3000) in page.locator("table").last.inner_text()

    # The dashboard has no figures yet; a recompute fills it, with its progress shown as it runs.
    s.go(f"/reports/{campaign.slug}/")
    with page.expect_response(re.compile(r"/recompute/")):
        page.locator("form[action$='/recompute/'] button").click()
    bar = page.locator("#recompute-status [role=progressbar]")
    bar.wait_for()
    page.wait_for_function(
        "() => document.querySelector('#recompute-status [role=progressbar]').getAttribute('aria-valuenow') === '100'"
    )
    assert "100%" in bar.inner_text()
    # The admin's run is the latest: with Celery eager (the embedded default) the target import's refresh ran too.
    run = RecomputeRun.objects.filter(campaign=campaign).latest("pk")
    assert run.status == RecomputeRun.Status.SUCCEEDED
    problems += check_page(s, "recompute-done")
    with page.expect_navigation():
        page.locator("#recompute-status a").click()
    cards = page.locator(".card-figure")
    assert cards.count() == 2
    assert number(s, 1500 + 700) in page.locator("main").inner_text()
    problems += check_page(s, "dashboard-after-recompute")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------------- manager


@pytest.mark.parametrize("browser_session", JOURNEY_COMBOS, indirect=True)
def test_a_manager_reads_the_dashboard_filters_the_ranking_drills_into_a_unit_and_exports_it(
    browser_session, manager_user, province, unit, other_unit, commune, other_commune
):
    s = browser_session
    page = s.page
    world = build_world(
        province=province, unit=unit, other_unit=other_unit, commune=commune, other_commune=other_commune
    )
    s.login("manager1", PASSWORD)
    assert page.url.endswith("/reports/")
    assert page.locator(".navbar [aria-current=page]").get_attribute("href") == "/reports/"  # where they are
    assert page.get_by_text("Tỉnh Bắc Thử").first.is_visible()  # the manager's province, in the navigation bar
    overview = page.locator("main").inner_text()
    assert number(s, 12500) in overview  # the province's VSI target
    problems = check_page(s, "overview")

    page.locator(f"main a[href$='/reports/{world.campaign.slug}/']").first.click()
    page.wait_for_selector(".card-figure")
    main = page.locator("main").inner_text()
    assert world.today.strftime("%d/%m/%Y") in main  # figures as of today, written dd/mm/yyyy
    assert page.locator(".card-figure").count() == 2
    pct = page.locator("section.card dd.num").first.inner_text()
    assert re.fullmatch(r"\d+" + vi(s, ",", r"\.") + r"\d\d%", pct), pct  # 1,03% in Vietnamese; 1.03% in English
    # Every chart is drawn by plotly, and none is wider than the screen.
    page.wait_for_function("() => document.querySelectorAll('.chart .js-plotly-plot .main-svg').length >= 3")
    charts = page.locator(".chart .js-plotly-plot")
    assert charts.count() >= 3
    width = page.viewport_size["width"]
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box["width"] > 200 and box["x"] >= 0 and box["x"] + box["width"] <= width + 1
    # Axis numbers are written as the language writes them (10.000 / 10,000), not plotly's "10k".
    ticks = page.locator(".chart .ytick text, .chart .xtick text").all_text_contents()
    assert number(s, 10000) in ticks, ticks
    problems += check_page(s, "dashboard")

    # The ranking, filtered to one unit by name, then that unit.
    ranking = page.locator("#ranking-title").locator("xpath=..").locator("table")
    assert ranking.get_by_text("Huyện Yên Thử").first.is_visible()
    page.fill("#id_unit_name", "Hiệp")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Huyện Yên Thử" not in ranking.inner_text()
    assert ranking.locator("tbody tr").count() == 2  # its two schemes
    with page.expect_navigation():
        ranking.get_by_role("link", name="Huyện Hiệp Thử").first.click()
    assert page.locator("h1").inner_text() == "Huyện Hiệp Thử"
    assert page.get_by_text(other_commune.name).first.is_visible()
    problems += check_page(s, "unit")

    # Its enrollments, exported.
    with page.expect_navigation():
        page.locator("main a.btn[href*='/enrollments/']").first.click()
    problems += check_page(s, "unit-enrollments")
    export = s.download(page.locator("a[href*='_export=xlsx']"))
    sheet = openpyxl.load_workbook(export).active
    rows = list(sheet.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    unit_column = next(i for i, h in enumerate(header) if h in ("Đơn vị", "Unit"))
    assert body and {r[unit_column] for r in body} == {"Huyện Hiệp Thử"}
    assert len(body) <= world.enrolled_other_unit
    assert not problems, "\n".join(problems)
