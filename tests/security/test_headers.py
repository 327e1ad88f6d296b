"""Security headers (issue 7, item 7): a Content-Security-Policy without inline script, HSTS, nosniff,
Referrer-Policy, frame-ancestors / X-Frame-Options, Cross-Origin-Opener-Policy, and no-store on every dynamic page.

The templates themselves are parsed: no inline <script> (other than JSON data blocks) and no on*= handler anywhere,
so that the policy never has to allow one.
"""

import datetime
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from reports import charts
from tests.factories import CampaignFactory

BASE = Path(settings.BASE_DIR)
HTTPS = {"secure": True}  # HSTS is only sent over HTTPS


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_security_headers(response):
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"], "scripts from this site only: no 'unsafe-inline', no 'unsafe-eval'"
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def assert_not_stored(response):
    cache = {part.strip() for part in response["Cache-Control"].split(",")}
    assert "no-store" in cache and "private" in cache, response["Cache-Control"]


@pytest.mark.django_db
def test_the_login_page_sends_every_security_header_and_is_not_stored(client):
    response = client.get(reverse("login"), **HTTPS)
    assert response.status_code == 200
    assert_security_headers(response)
    assert_not_stored(response)


@pytest.mark.django_db
@override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True)
def test_https_pages_carry_hsts(client, staff_user):
    client.force_login(staff_user)
    response = client.get(reverse("participants:enrollment_create"), **HTTPS)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_production_settings_switch_hsts_on():
    # The embedded run is DEBUG=false unless told otherwise: HSTS for a year, subdomains included.
    if settings.DEBUG:
        pytest.skip("DEBUG run: HSTS is off on purpose")
    assert settings.SECURE_HSTS_SECONDS >= 31536000
    assert settings.SECURE_HSTS_INCLUDE_SUBDOMAINS


@pytest.mark.django_db
def test_an_officers_page_sends_every_security_header(client, staff_user):
    client.force_login(staff_user)
    response = client.get(reverse("participants:enrollment_create"), **HTTPS)
    assert response.status_code == 200
    assert_security_headers(response)
    assert_not_stored(response)


@pytest.mark.django_db
def test_the_api_sends_every_security_header_and_is_not_stored(client, manager_user, province):
    CampaignFactory(province=province, slug="api-headers")
    client.force_login(manager_user)
    for url in (
        reverse("api:campaign_list"),
        reverse("api:campaign_attainment", kwargs={"slug": "api-headers"}),
        reverse("api:openapi"),
    ):
        response = client.get(url, **HTTPS)
        assert response.status_code == 200, url
        assert_security_headers(response)
        assert_not_stored(response)


@pytest.mark.django_db
def test_an_anonymous_api_refusal_is_not_stored_either(client):
    response = client.get(reverse("api:campaign_list"), **HTTPS)
    assert response.status_code in (401, 403)
    assert_security_headers(response)
    assert_not_stored(response)


@pytest.mark.django_db
def test_pages_with_personal_data_are_never_stored(client, staff_user, manager_user, unit, province):
    from participants.models import Participant

    person = Participant.objects.create(
        si_number="2412345678", full_name="Lê Thị Hoa", date_of_birth=datetime.date(1980, 1, 2), gender="F"
    )
    campaign = CampaignFactory(province=province, slug="no-store")
    client.force_login(staff_user)
    urls = [
        reverse("participants:enrollment_list"),
        reverse("participants:enrollment_list") + "?_export=csv",
        reverse("participants:enrollment_list") + "?_export=xlsx",
        reverse("participants:enrollment_create"),
        reverse("participants:enrollment_upload"),
        reverse("participants:enrollment_upload_template"),
    ]
    for url in urls:
        response = client.get(url, **HTTPS)
        assert response.status_code == 200, url
        assert_not_stored(response)
        assert "Content-Security-Policy" in response
    # The person look-up is a POST (the SI number in the body, never in the address).
    response = client.post(reverse("participants:participant_lookup"), {"si_number": person.si_number}, **HTTPS)
    assert response.status_code == 200
    assert_not_stored(response)
    client.force_login(manager_user)
    for url in (
        reverse("reports:province_overview"),
        reverse("reports:campaign_dashboard", kwargs={"slug": campaign.slug}),
        reverse("reports:unit_detail", kwargs={"slug": campaign.slug, "code": unit.code}),
    ):
        response = client.get(url, **HTTPS)
        assert response.status_code == 200, url
        assert_not_stored(response)


@pytest.mark.django_db
@override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True)
def test_static_files_keep_their_own_caching():
    # WhiteNoise answers before the no-store middleware: the vendor libraries are cached as usual.
    from django.test import Client

    response = Client().get("/" + settings.STATIC_URL.strip("/") + "/js/charts.js")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
    assert "Content-Security-Policy" not in response


def test_a_chart_travels_as_a_json_data_block_not_as_a_script():
    fig = charts.breakdown_chart(
        groups=[{"group": "</script><script>alert(1)</script>", "vsi": 3, "hi_family": 1}],
        labels={},
        title="<b>x</b>",
    )
    markup = str(charts.to_html(fig))
    blocks = re.findall(r"<script([^>]*)>(.*?)</script>", markup, flags=re.S)
    assert len(blocks) == 1, "one block, never closed early by a name"
    attrs, body = blocks[0]
    assert 'type="application/json"' in attrs
    assert "<" not in body and ">" not in body
    spec = json.loads(body)
    assert spec["figure"]["data"][0]["type"] == "bar"
    chart_id = re.search(r'data-plotly-figure="([^"]+)"', attrs).group(1)
    assert f'id="{chart_id}"' in markup


# --- the templates -------------------------------------------------------------------------------------------------


class InlineCode(HTMLParser):
    """Collects inline scripts (a <script> without src that is not a JSON data block) and on*= handlers."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        for name, _value in attrs:
            if name.lower().startswith("on") or name.lower().startswith("hx-on"):
                self.found.append(f"{name}= on <{tag}>")
        if tag == "script" and "src" not in names and (names.get("type") or "") != "application/json":
            self.found.append("<script> without src")
        if tag == "a" and (names.get("href") or "").strip().lower().startswith("javascript:"):
            self.found.append("javascript: link")


def template_files():
    roots = [BASE / "templates", *sorted(BASE.glob("*/templates"))]
    return sorted(p for root in roots for p in root.rglob("*.html") if ".venv" not in p.parts)


def test_the_templates_are_found():
    names = {p.relative_to(BASE).as_posix() for p in template_files()}
    assert "templates/base.html" in names
    assert "participants/templates/participants/enrollment_form.html" in names
    assert len(names) > 20


@pytest.mark.parametrize("path", template_files(), ids=lambda p: p.relative_to(BASE).as_posix())
def test_no_template_holds_inline_script_or_event_handlers(path):
    text = path.read_text(encoding="utf-8")
    # Template tags and comments are not HTML: blank them out (an attribute value may hold {% if %}...).
    text = re.sub(r"{#.*?#}", "", text, flags=re.S)
    text = re.sub(r"{%.*?%}", " ", text, flags=re.S)
    text = re.sub(r"{{.*?}}", "x", text, flags=re.S)
    parser = InlineCode()
    parser.feed(text)
    assert parser.found == []
    # htmx trigger filters ("[...]") and hx-vals "js:" are code too: evaluated with eval, which the policy forbids.
    assert not re.search(r'hx-trigger="[^"]*\[', text)
    assert "js:" not in " ".join(re.findall(r'hx-vals=[\'"][^\'"]*', text))


def test_the_parser_catches_what_it_looks_for():
    parser = InlineCode()
    parser.feed('<select onchange="x()"></select><script>alert(1)</script><script type="application/json">{}</script>')
    parser.feed('<script src="/static/a.js"></script><a href="javascript:void(0)">x</a><p hx-on:click="y">')
    assert parser.found == ["onchange= on <select>", "<script> without src", "javascript: link", "hx-on:click= on <p>"]


# --- cookies, content types, passwords, browser storage ------------------------------------------------------------


@pytest.mark.django_db
def test_the_session_cookie_is_http_only_same_site_and_secure_outside_debug(client, staff_user):
    response = client.post(
        reverse("login"), {"username": staff_user.username, "password": "correct-horse-battery"}, **HTTPS
    )
    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert bool(cookie["secure"]) is (not settings.DEBUG)
    assert response.cookies[settings.CSRF_COOKIE_NAME]["samesite"] == "Lax"


@pytest.mark.django_db
def test_responses_name_their_content_type_and_charset_and_allow_no_other_origin(client, manager_user, province):
    CampaignFactory(province=province, slug="types")
    client.force_login(manager_user)
    page = client.get(reverse("reports:province_overview"), HTTP_ORIGIN="https://elsewhere.example", **HTTPS)
    assert page["Content-Type"] == "text/html; charset=utf-8"
    api = client.get(reverse("api:campaign_list"), HTTP_ORIGIN="https://elsewhere.example", **HTTPS)
    assert api["Content-Type"].startswith("application/json")
    for response in (page, api):
        assert "Access-Control-Allow-Origin" not in response


def test_passwords_need_eight_characters_are_checked_against_common_ones_and_may_be_long():
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    for weak in ("Ab3$xyz", "password123", "qwertyuiop"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    validate_password("ngựa-đúng pin kẹp giấy " * 3)  # 69 characters, any script, spaces
    validate_password("x" * 40 + "Ư9 !")


def test_passwords_are_stored_with_a_slow_key_derivation_function():
    from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher, make_password

    # The suite swaps in a fast hasher for speed; the settings' own list is what production uses.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"]):
        encoded = make_password("correct-horse-battery")
        assert encoded.startswith("pbkdf2_sha256$")
        assert int(encoded.split("$")[1]) >= PBKDF2PasswordHasher.iterations >= 600_000
        assert get_hasher("default").algorithm == "pbkdf2_sha256"
    # ... and the project's settings keep Django's default list (PBKDF2 first): nothing weaker is configured.
    assert "PASSWORD_HASHERS" not in (BASE / "config" / "settings.py").read_text(encoding="utf-8")


def test_the_browser_code_keeps_nothing_in_browser_storage_and_builds_no_html():
    for path in sorted((BASE / "static" / "js").glob("*.js")):
        code = path.read_text(encoding="utf-8")
        for word in (
            "localStorage",
            "sessionStorage",
            "indexedDB",
            "document.cookie",
            "innerHTML",
            "eval(",
            "Function(",
        ):
            assert word not in code, f"{path.name} uses {word}"
