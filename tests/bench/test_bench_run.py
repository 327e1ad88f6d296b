"""bench/run.py at a tiny N, so that the benchmark script cannot rot. Its timings are printed, never asserted."""

import importlib.util
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from participants.models import Enrollment, Participant

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MEASUREMENTS = (
    "full recompute",
    "incremental recompute",
    "dashboard, window campaign (first view of a snapshot)",
    "dashboard, window campaign (later views)",
    "attainment API, window campaign",
    "dashboard, stock campaign (first view of a snapshot)",
    "dashboard, stock campaign (later views)",
    "attainment API, stock campaign",
    "entry save",
    "target import",
    "enrollment list import",
)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark needs PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_benchmark_runs_every_measurement_at_a_small_n_and_leaves_the_data_as_it_found_it():
    bench = _bench()
    args = bench.parse_args(
        [
            "--enrollments=3000",
            "--requests=3",
            "--day-rows=40",
            "--import-rows=20",
            "--reference-rows=200",
            "--target-files=2",
            "--no-write",
        ]
    )
    eager = settings.CELERY_TASK_ALWAYS_EAGER

    result = bench.benchmark(args)

    figures = {r["name"]: r for r in result["rows"]}
    for measurement in MEASUREMENTS:
        found = [r for name, r in figures.items() if name.startswith(measurement)]
        assert found, f"no row for {measurement}: {list(figures)}"
        for r in found:
            assert r["product"] not in ("failed", "not available"), r
            assert r["reference"] is not None, r
    assert result["counts"]["enrollments"] == 3000
    assert result["machine"]["cores"] >= 1
    assert result["machine"]["postgresql"]
    # What the run added (a day's rows, entries, imported rows) is gone, so that the next run reuses the data.
    assert Enrollment.objects.count() == 3000
    assert not Participant.objects.filter(si_number__startswith="90").exists()
    from celery import current_app

    assert current_app.conf.task_always_eager == eager

    markdown = bench.table_markdown(result)
    assert "| full recompute (all campaigns) |" in markdown
    assert "3,000 enrollments" in markdown


def test_the_readme_section_is_replaced_in_place_not_appended_twice(tmp_path):
    bench = _bench()
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n## Benchmark\n\nHow to run it.\n", encoding="utf-8")

    bench.readme_update("| first | table |", readme)
    bench.readme_update("| second | table |", readme)

    text = readme.read_text(encoding="utf-8")
    assert text.count(bench.README_BEGIN) == 1
    assert "| second | table |" in text
    assert "| first | table |" not in text
    assert text.startswith("# Title\n\n## Benchmark\n\nHow to run it.\n")


def test_it_refuses_a_database_that_is_not_postgresql(monkeypatch, capsys):
    bench = _bench()
    monkeypatch.setenv("DATABASE_URL", "sqlite:///somewhere.sqlite3")

    assert bench.main(["--quick", "--no-write"]) == 2
    assert "PostgreSQL" in capsys.readouterr().err


def test_a_rerun_of_failed_steps_replaces_their_rows_in_place():
    bench = _bench()
    previous = {
        "started_at": "t1",
        "rows": [
            {"name": "full recompute (all campaigns)", "step": "full recompute", "product": 1.0},
            {"name": "entry save", "product": "failed"},
            {"name": "target import: preview + commit", "step": "target import", "product": 2.0},
        ],
    }
    rerun = {
        "started_at": "t2",
        "rows": [{"name": "entry save through the view, median / p95", "step": "entry save", "product": "9 / 12"}],
    }

    merged = bench.merge(previous, rerun)

    assert [r["name"] for r in merged["rows"]] == [
        "full recompute (all campaigns)",
        "entry save through the view, median / p95",
        "target import: preview + commit",
    ]
    assert merged["started_at"] == "t1"
    assert merged["reruns"] == [rerun]
