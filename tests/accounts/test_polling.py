"""Timed htmx polling (progress of a recompute or an upload) does not keep an unattended session alive.

A page left open with a progress bar polls every second; if those requests counted as activity, the session would
never reach its idle timeout. They are still checked (an idle session ends on the next poll), but they do not move
the idle clock; the sign-in then replaces the whole page, not the polled fragment.
"""

import re
import time
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from accounts.middleware import LAST_SEEN, POLLING_ELEMENT_IDS
from reports.models import RecomputeRun
from tests.factories import CampaignFactory

ROOT = Path(__file__).resolve().parents[2]
POLL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TRIGGER": "recompute-status"}


@pytest.fixture
def polling_admin(db, province, admin_user):
    """An admin's browser tab with a recompute's progress bar open, and the fragment it polls."""
    run = RecomputeRun.objects.create(campaign=CampaignFactory(province=province), status=RecomputeRun.Status.RUNNING)
    client = Client()
    client.force_login(admin_user)
    assert client.get(reverse("reports:run_progress", kwargs={"pk": run.pk})).status_code == 200
    return client, reverse("reports:run_progress", kwargs={"pk": run.pk})


def _last_seen(client, seconds_ago):
    session = client.session
    session[LAST_SEEN] = int(time.time()) - seconds_ago
    session.save()


def test_polling_does_not_move_the_idle_clock(polling_admin, settings):
    client, fragment = polling_admin
    idle_for = settings.SESSION_IDLE_SECONDS - 120
    _last_seen(client, idle_for)
    for _ in range(3):
        assert client.get(fragment, **POLL).status_code == 200
    assert int(time.time()) - client.session[LAST_SEEN] >= idle_for


def test_a_page_the_user_opens_does_move_it(polling_admin, settings):
    client, fragment = polling_admin
    _last_seen(client, settings.SESSION_IDLE_SECONDS - 120)
    # The same fragment fetched by the user (not by the timer) is activity.
    assert client.get(fragment, HTTP_HX_REQUEST="true").status_code == 200
    assert int(time.time()) - client.session[LAST_SEEN] < 5


def test_a_page_left_polling_is_signed_out_at_the_idle_timeout(polling_admin, settings):
    client, fragment = polling_admin
    settings.SESSION_IDLE_SECONDS = 90
    _last_seen(client, 30)
    assert client.get(fragment, **POLL).status_code == 200
    _last_seen(client, 95)  # 95 s of nothing but polling
    response = client.get(fragment, **POLL)
    # htmx sends the whole page to the sign-in (HX-Redirect) instead of swapping the form into the progress bar.
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("login")
    assert response.content == b""
    assert "_auth_user_id" not in client.session
    assert client.get(fragment).status_code == 302


def test_every_polling_element_of_the_templates_is_known_to_the_session_middleware():
    """An element with hx-trigger="every ..." must have an id listed in POLLING_ELEMENT_IDS."""
    found = {}
    for template in ROOT.glob("*/templates/**/*.html"):
        if ".venv" in template.parts:
            continue
        for tag in re.findall(r"<[a-z]+\s[^>]*hx-trigger=\"[^\"]*every [^>]*>", template.read_text()):
            element_id = re.search(r'\bid="([^"]+)"', tag)
            found[str(template.relative_to(ROOT))] = element_id.group(1) if element_id else None
    assert found, "no polling element found: the scan is broken"
    unknown = {path: element_id for path, element_id in found.items() if element_id not in POLLING_ELEMENT_IDS}
    assert not unknown, f"polling elements the session middleware would count as activity: {unknown}"
