"""The README's screenshots, taken from the demo data (`make screenshots` writes them to docs/screenshots/).

Slow (it seeds the whole demo province), so it runs only when asked for: with --screenshots-dir pointing at
docs/screenshots, as `make screenshots` does, or with README_SCREENSHOTS=1."""

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.browser.conftest import DESKTOP, PHONE, Session

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

README_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def wanted(screenshots_dir):
    if screenshots_dir.resolve() != README_DIR and os.environ.get("README_SCREENSHOTS") != "1":
        pytest.skip("README screenshots: run `make screenshots` (or set README_SCREENSHOTS=1)")
    return screenshots_dir


def _shot(session, name):
    """A viewport-sized PNG (not the whole page) keeps the README's images small."""
    session.page.wait_for_load_state("networkidle")
    path = session.screenshots_dir / f"{name}.png"
    session.page.screenshot(path=str(path))
    return path


def test_readme_screenshots(wanted, chromium, live_server, browser_settings):
    from campaigns.demo import DEMO_USERS
    from campaigns.models import Campaign

    call_command("seed_demo", verbosity=0)
    users = {u.username: u for u in DEMO_USERS}
    staff, manager, admin = users["canbo"], users["lanhdao"], users["quantri"]
    today = timezone.localdate()
    campaign = (
        Campaign.objects.filter(start_date__lte=today, end_date__gte=today).order_by("-start_date").first()
        or Campaign.objects.order_by("-end_date").first()
    )
    taken, external = [], []

    def session(viewport, name):
        return Session(chromium, live_server, viewport=viewport, language="vi", screenshots_dir=wanted, name=name)

    s = session(DESKTOP, "readme")
    s.login(staff.username, staff.password)
    taken.append(_shot(s, "1-ghi-nhan"))
    s.go("/enrollments/")
    taken.append(_shot(s, "2-danh-sach"))
    external += s.external
    s.context.close()

    s = session(DESKTOP, "readme")
    s.login(manager.username, manager.password)
    taken.append(_shot(s, "3-tong-quan"))
    s.go(f"/reports/{campaign.slug}/")
    s.page.wait_for_selector(".js-plotly-plot .main-svg")
    taken.append(_shot(s, "4-bang-dieu-khien"))
    s.go(f"/reports/{campaign.slug}/units/{staff.unit_code}/")
    taken.append(_shot(s, "5-don-vi"))
    external += s.external
    s.context.close()

    s = session(DESKTOP, "readme")
    s.login(admin.username, admin.password)
    s.go(f"/campaigns/{campaign.slug}/")
    taken.append(_shot(s, "6-chien-dich"))
    external += s.external
    s.context.close()

    s = session(PHONE, "readme")
    s.login(manager.username, manager.password)
    s.go(f"/reports/{campaign.slug}/")
    s.page.wait_for_selector(".js-plotly-plot .main-svg")
    taken.append(_shot(s, "7-dien-thoai"))
    external += s.external
    s.context.close()

    assert external == []
    assert all(p.stat().st_size > 10_000 for p in taken)
