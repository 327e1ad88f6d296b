"""The entry page driven by the keyboard alone in Chromium, as an officer at the counter would use it."""

import pytest

from participants.models import Enrollment
from tests.factories import ParticipantFactory
from tests.participants.conftest import record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["desktop-vi", "desktop-en"])
def session(request, chromium, live_server, browser_settings, tmp_path):
    # The shared session-wide browser (tests/browser/conftest.py): Playwright's sync API runs one event loop per
    # process, so a second sync_playwright() after the browser suite's would fail.
    from tests.browser.conftest import DESKTOP, Session

    language = request.param.split("-")[1]
    s = Session(
        chromium, live_server, viewport=DESKTOP, language=language, screenshots_dir=tmp_path, name=request.param
    )
    yield s
    s.context.close()
    assert s.external == []


def focused(page):
    return page.evaluate("document.activeElement.id")


def test_an_officer_records_two_people_without_touching_the_mouse(session, staff_user, unit, commune):
    known = ParticipantFactory(si_number="2401111111", full_name="Vũ Thị Quen")
    record(known, unit=unit, commune=commune)
    s = session
    s.login("staff1", "correct-horse-battery")
    page = s.page
    assert focused(page) == "id_si_number"
    keys = page.keyboard
    # A new person: every field typed, Enter saves.
    keys.type("240 222 2222")
    page.wait_for_timeout(600)
    keys.press("Tab")
    assert focused(page) == "id_full_name"
    keys.type("Đặng Văn Mới")
    keys.press("Tab")
    keys.type("02/02/1990")
    keys.press("Tab")
    keys.press("Tab")  # gender stays as it is
    assert focused(page) == "id_commune"
    keys.press("ArrowDown")
    keys.press("Enter")
    page.wait_for_url("**/enrollments/new/?saved=*")
    assert focused(page) == "id_si_number"  # ready for the next person
    enrollment = Enrollment.objects.get(participant__si_number="2402222222")
    assert enrollment.kind == "new" and enrollment.commune == commune
    assert page.locator("#saved").is_visible()
    assert s.axe_violations() == []
    # A known person: the number fills in the details, the cursor stays where the officer is.
    keys.type("2401111111")
    page.wait_for_function("() => document.getElementById('id_full_name').value === 'Vũ Thị Quen'")
    keys.press("Tab")
    assert focused(page) == "id_full_name"
    first_url = page.url
    keys.press("Enter")
    page.wait_for_function(f"() => location.href !== {first_url!r}")
    page.wait_for_load_state()
    # The earlier coverage (March 2024, 12 months) ended long ago: today's payment brings the person back.
    assert Enrollment.objects.filter(participant=known).count() == 2
    assert Enrollment.objects.filter(participant=known).order_by("coverage_start").last().kind == "resumed"
    assert "Resumed" in page.content() or "Tham gia lại" in page.content()
    s.screenshot("after-known")


def test_the_months_drop_down_offers_only_what_the_chosen_scheme_allows(session, staff_user, unit, commune):
    s = session
    s.login("staff1", "correct-horse-battery")
    page = s.page

    def offered():
        return page.eval_on_selector_all("#id_months option", "os => os.filter(o => !o.disabled).map(o => o.value)")

    assert offered() == ["1", "3", "6", "12", "24", "36", "48", "60"]  # voluntary social insurance, the default
    page.select_option("#id_months", "3")
    page.select_option("#id_scheme", "hi_family")
    # Family health insurance cards run for 12 months: the only choice, and chosen for the officer.
    assert offered() == ["12"]
    assert page.input_value("#id_months") == "12"
    assert page.eval_on_selector_all("#id_months option", "os => os.filter(o => !o.hidden).length") == 1
    page.select_option("#id_scheme", "vsi")
    assert offered() == ["1", "3", "6", "12", "24", "36", "48", "60"]
    assert page.input_value("#id_months") == "12"
