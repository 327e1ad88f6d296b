"""bandit over the application code (issue 7, item 8): no finding of medium severity or above that nobody reviewed.

A reviewed finding is marked where it is, `# nosec <ID> - reason`; the reason is required here too, so that a bare
`# nosec` (which silences everything on its line) does not slip in.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
APPS = ["config", "districts", "campaigns", "participants", "reports", "accounts", "audit"]


def bandit_command():
    exe = Path(sys.executable).with_name("bandit")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("bandit")
    if found:
        return [found]
    pytest.skip("bandit is not installed (pip install -e '.[dev]')")


def run_bandit(*extra):
    result = subprocess.run(
        [*bandit_command(), "-c", "pyproject.toml", "-q", "-r", *APPS, "-f", "json", *extra],
        cwd=BASE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def test_bandit_finds_nothing_of_medium_severity_or_above_that_was_not_reviewed():
    report = run_bandit("-ll")
    assert report["errors"] == []
    findings = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_severity']} {r['issue_text']}"
        for r in report["results"]
    ]
    assert findings == []


def test_every_nosec_names_the_check_and_gives_a_reason():
    bare = []
    for app in APPS:
        for path in (BASE / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "# nosec" in line and not re.search(r"# nosec( B\d{3})+ - \S.{8,}", line):
                    bare.append(f"{path.relative_to(BASE)}:{n}: {line.strip()}")
    assert bare == []


def test_bandit_would_catch_an_unreviewed_finding(tmp_path):
    # The same command finds a planted SQL string built from input, so a clean result above means something.
    app = tmp_path / "planted"
    app.mkdir()
    (app / "views.py").write_text(
        "def find(cursor, name):\n    cursor.execute(f\"SELECT * FROM people WHERE name = '{name}'\")\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [*bandit_command(), "-q", "-r", str(app), "-ll", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert [r["test_id"] for r in json.loads(result.stdout)["results"]] == ["B608"]


# --- SECURITY.md's ASVS table --------------------------------------------------------------------------------------

ASVS_TSV = BASE.parent / "shared" / "reference" / "asvs5-l2-applicable.tsv"
STATUSES = {"covered", "partly", "documented", "n/a", "gap"}


def asvs_rows_of_security_md():
    text = (BASE / "SECURITY.md").read_text(encoding="utf-8")
    return {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"^\| (V[\d.]+) \| .*? \| ([a-z/]+) \| (.*) \|$", text, flags=re.M)
    }


def test_security_md_answers_every_applicable_asvs_requirement_once():
    if not ASVS_TSV.exists():
        pytest.skip("the ASVS reference list is not beside this checkout")
    wanted = [line.split("\t")[0] for line in ASVS_TSV.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    rows = asvs_rows_of_security_md()
    assert sorted(rows) == sorted(wanted)
    for req, (status, cell) in rows.items():
        assert status in STATUSES, req
        if status in {"covered", "partly"}:
            assert "`" in cell or status == "partly", f"{req} is {status} without a test"
        else:
            assert len(re.sub(r"`[^`]*`|<br>", "", cell).strip()) > 10, f"{req} needs a reason"


def test_every_test_named_in_security_md_exists():
    defined = set()
    for path in (BASE / "tests").rglob("test_*.py"):
        for name in re.findall(r"^(?:async )?def (test_\w+)", path.read_text(encoding="utf-8"), flags=re.M):
            defined.add(f"{path.relative_to(BASE / 'tests').as_posix()}::{name}")
    named = {
        ref for _status, cell in asvs_rows_of_security_md().values() for ref in re.findall(r"`([\w/]+\.py::\w+)`", cell)
    }
    assert named, "the table names tests"
    assert sorted(named - defined) == []
