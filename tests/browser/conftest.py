"""Playwright (Python) with Debian's Chromium against pytest-django's live server.

Skipped when Chromium is not installed, unless REQUIRE_BROWSER_TESTS=1 (CI installs it and sets that), in which case
a missing browser fails the run. Every page a test opens is watched: a request to anything but the live server fails
the test (no CDN, no fonts from elsewhere).
"""

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AXE_JS = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def pytest_addoption(parser):
    parser.addoption("--screenshots-dir", default="test-results/screenshots", help="where browser tests save PNGs")


def pytest_collection_modifyitems(config, items):
    if CHROMIUM:
        return
    if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
        raise pytest.UsageError("REQUIRE_BROWSER_TESTS=1 but Chromium is not installed (apt-get install -y chromium)")
    skip = pytest.mark.skip(reason="Chromium is not installed (apt-get install -y chromium)")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def screenshots_dir(request):
    path = Path(request.config.getoption("--screenshots-dir"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Every journey signs in; PBKDF2 at full strength would cost seconds per test on a small machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _celery_in_process():
    """The live server runs tasks in its own thread, whatever REDIS_URL says (CI sets it and runs no worker here)."""
    from config.celery import app

    old = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


@pytest.fixture
def browser_settings(settings):
    # The live server speaks plain HTTP; secure cookies would never come back from the browser.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.DEBUG = False
    return settings


class Session:
    """One browser context (viewport and language) with a watch on every request it makes."""

    def __init__(self, browser, live_server, *, viewport, language, screenshots_dir, name):
        self.base = live_server.url
        self.context = browser.new_context(
            viewport=viewport, locale="vi-VN" if language == "vi" else "en-US", accept_downloads=True
        )
        self.context.add_cookies([{"name": "django_language", "value": language, "url": self.base}])
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.external = []
        self.page.on("request", self._watch)
        # Anything the Content-Security-Policy blocked (an inline script, an eval, a style) shows up on the console.
        self.csp_violations = []
        self.page.on(
            "console",
            lambda message: (
                self.csp_violations.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        self.language = language
        self.screenshots_dir = screenshots_dir
        self.name = name

    def _watch(self, request):
        if not request.url.startswith(self.base) and not request.url.startswith(("data:", "blob:", "about:")):
            self.external.append(request.url)

    def go(self, path):
        self.page.goto(self.base + path)
        return self.page

    def login(self, username, password):
        self.go("/accounts/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        # Wait for the sign-in's own navigation: the login page is already idle, so waiting for idleness alone could
        # return before the form is sent, and the next goto would then cancel it.
        with self.page.expect_navigation():
            self.page.keyboard.press("Enter")
        self.page.wait_for_load_state("networkidle")

    def screenshot(self, label):
        path = self.screenshots_dir / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def overflow(self):
        """How many CSS pixels the page is wider than the window (0 when nothing is cut off or scrolls sideways)."""
        return self.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")

    def download(self, locator):
        """Clicks a link that downloads a file; returns the saved file's path."""
        with self.page.expect_download() as info:
            locator.click()
        download = info.value
        path = self.screenshots_dir.parent / "downloads" / f"{self.name}-{download.suggested_filename}"
        path.parent.mkdir(parents=True, exist_ok=True)
        download.save_as(str(path))
        return path

    def axe_violations(self, impacts=("serious", "critical")):
        # The page's Content-Security-Policy refuses inline script: axe arrives as a same-origin file instead.
        self.page.route(
            "**/__axe.min.js",
            lambda route: route.fulfill(status=200, content_type="application/javascript", body=AXE_JS),
        )
        self.page.add_script_tag(url="/__axe.min.js")
        result = self.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        return [
            f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
            if v["impact"] in impacts
        ]


@pytest.fixture(params=["desktop-vi", "desktop-en", "phone-vi", "phone-en"])
def browser_session(request, chromium, live_server, browser_settings, screenshots_dir):
    size, language = request.param.split("-")
    session = Session(
        chromium,
        live_server,
        viewport=DESKTOP if size == "desktop" else PHONE,
        language=language,
        screenshots_dir=screenshots_dir,
        name=f"{request.node.originalname}-{request.param}",
    )
    yield session
    session.context.close()
    assert session.external == [], f"the page asked for outside resources: {session.external}"
    assert session.csp_violations == [], "the Content-Security-Policy refused something the pages need"
