"""Fault tests: a private Redis, PostgreSQL, gunicorn and Celery worker per test, killed and restarted on purpose.

They need PostgreSQL (the test database) and the binaries of redis-server and PostgreSQL 15; they are skipped when
a binary is missing, unless REQUIRE_FAULT_TESTS=1 (CI sets it), in which case that fails the run.
"""

import os

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from tests.faults.services import RedisServer, app_environment, database_url, missing_tools
from tests.security.load import HttpSession


def pytest_collection_modifyitems(config, items):
    ours = [item for item in items if "tests/faults" in str(item.fspath)]
    if not ours:
        return
    reasons = []
    missing = missing_tools()
    if missing:
        reasons.append(f"missing: {', '.join(missing)}")
    if connection.vendor != "postgresql":
        reasons.append("the fault tests run on PostgreSQL (set DATABASE_URL)")
    if not reasons:
        return
    reason = "; ".join(reasons)
    if os.environ.get("REQUIRE_FAULT_TESTS") == "1":
        raise pytest.UsageError(f"REQUIRE_FAULT_TESTS=1 but the fault tests cannot run: {reason}")
    for item in ours:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    if server.process is not None:
        server.process.kill()


@pytest.fixture
def test_database_url(transactional_db):
    """The test database, for subprocesses; the processes using it end before the test's flush (fixture order)."""
    return database_url(connection.settings_dict)


@pytest.fixture
def app_env():
    def build(*, database_url, redis_url, **extra):
        return app_environment(
            database_url=database_url, redis_url=redis_url, secret_key=django_settings.SECRET_KEY, **extra
        )

    return build


def signed_in(base_url: str, user) -> HttpSession:
    """An HTTP session for `user` on a server sharing this process's database and SECRET_KEY."""
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return HttpSession(base_url, cookies={name: client.cookies[name].value})
