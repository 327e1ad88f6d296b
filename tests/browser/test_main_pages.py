"""Every main page, as the role that works on it, at the two combinations the journeys do not drive (desktop in
English, phone in Vietnamese): screenshots, axe-core, nothing cut off sideways, no English on a Vietnamese page."""

import pytest

from tests.browser.pages import check_page, english_on_page
from tests.browser.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(province, unit, other_unit, commune, other_commune):
    return build_world(
        province=province, unit=unit, other_unit=other_unit, commune=commune, other_commune=other_commune
    )


@pytest.mark.parametrize("browser_session", ["desktop-en", "phone-vi"], indirect=True)
def test_every_main_page_is_accessible_fits_the_screen_and_speaks_the_language(
    browser_session, world, admin_user, manager_user, staff_user, unit
):
    s = browser_session
    slug = world.campaign.slug
    problems = []
    s.login("admin1", "correct-horse-battery")
    for label, path in (
        ("campaigns", "/campaigns/"),
        ("campaign-new", "/campaigns/new/"),
        ("campaign", f"/campaigns/{slug}/"),
        ("campaign-targets", f"/campaigns/{slug}/targets/"),
        ("target-import", f"/campaigns/{slug}/targets/import/"),
        ("overview", "/reports/"),
        ("dashboard", f"/reports/{slug}/"),
        ("unit", f"/reports/{slug}/units/{unit.code}/"),
        ("enrollments", "/enrollments/"),
        ("audit", "/audit/"),
    ):
        s.go(path)
        problems += check_page(s, label)
        if s.language == "en" and label == "dashboard":
            assert english_on_page(s.page)  # the detector of English on Vietnamese pages does see English
    s.context.clear_cookies()
    s.context.add_cookies([{"name": "django_language", "value": s.language, "url": s.base}])
    s.login("staff1", "correct-horse-battery")
    for label, path in (
        ("entry", "/enrollments/new/"),
        ("upload", "/enrollments/uploads/"),
        ("staff-dashboard", f"/reports/{slug}/"),
    ):
        s.go(path)
        problems += check_page(s, label)
    assert not problems, "\n".join(problems)
