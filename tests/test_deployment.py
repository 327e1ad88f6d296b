"""The production description (docker-compose.yml) and the settings agree, and the deployment checks pass."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
APP_SERVICES = ("web", "worker", "beat")


def variables_read_by_settings() -> set[str]:
    """Every NAME in env("NAME"), env.bool("NAME", ...), env.db("NAME") ... in config/settings.py."""
    tree = ast.parse((ROOT / "config" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        is_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env"
        )
        if is_env and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            names.add(node.args[0].value)
    return names


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_compose_file_describes_postgres_redis_web_worker_and_beat():
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert "gunicorn" in services["web"]["command"] and "migrate" in services["web"]["command"]
    assert "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_variable_the_compose_file_sets_is_read_by_the_settings_and_the_reverse(service):
    environment = compose()["services"][service]["environment"]
    set_here = set(environment)
    read = variables_read_by_settings()
    assert set_here - read == set(), "compose sets variables the settings never read"
    assert read - set_here == set(), "the settings read variables compose does not set"


def test_the_compose_file_holds_no_secret_values():
    environment = compose()["services"]["web"]["environment"]
    assert environment["SECRET_KEY"].startswith("${")
    assert "${POSTGRES_PASSWORD" in environment["DATABASE_URL"]


def test_production_settings_pass_djangos_deployment_checks():
    # Only what a production host would have: the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE must not leak in.
    inherited = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "PYTHONPATH")}
    env = {
        **inherited,
        "DEBUG": "false",
        "SECRET_KEY": "a-long-random-production-key-" + "x7Qp2" * 10,
        "ALLOWED_HOSTS": "bhxh.example.vn",
        "SECURE_SSL_REDIRECT": "true",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_health_check_answers_without_an_allowed_host(client, db):
    response = client.get("/healthz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_no_access_log_records_query_strings_which_can_carry_si_numbers():
    dockerfile = (ROOT / "Dockerfile").read_text()
    web = compose()["services"]["web"]["command"]
    for text in (dockerfile, web):
        assert "--access-logformat" in text and "%(U)s" in text
        assert "%(r)s" not in text and "%(q)s" not in text
