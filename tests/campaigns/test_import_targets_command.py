"""python manage.py import_targets FILE --campaign SLUG [--dry-run]: the same preview as text, all or nothing."""

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Target
from participants.models import Scheme
from tests.campaigns.conftest import HEADERS_EN, HEADERS_VI, csv_bytes, xlsx_bytes
from tests.factories import TargetFactory


def _run(*args):
    from io import StringIO

    out = StringIO()
    call_command("import_targets", *args, "--language", "en", stdout=out)
    return out.getvalue()


def test_a_dry_run_prints_the_preview_and_saves_nothing(tmp_path, campaign, unit, other_unit):
    TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=10)
    path = tmp_path / "chi-tieu.xlsx"
    path.write_bytes(
        xlsx_bytes([HEADERS_VI, [unit.code, "", 20, 30], ["", "yen thu hiep", None, None], ["", "Hiệp Thử", 5, 6]])
    )
    with pytest.raises(CommandError):
        _run(str(path), "--campaign", campaign.slug, "--dry-run")
    path.write_bytes(xlsx_bytes([HEADERS_VI, [unit.code, "", 20, 30], ["", "Hiệp Thử", 5, 6]]))
    output = _run(str(path), "--campaign", campaign.slug, "--dry-run")
    assert "Row 2: Huyện Yên Thử (9221)" in output
    assert "10 → 20 (changed)" in output and "— → 30 (new)" in output
    assert "3 new, 1 changed, 0 unchanged" in output
    assert Target.objects.filter(campaign=campaign).count() == 1


def test_an_import_saves_every_row_records_the_user_and_the_file_and_a_second_run_changes_nothing(
    tmp_path, campaign, unit, admin_user
):
    path = tmp_path / "dot-1.csv"
    path.write_bytes(csv_bytes([HEADERS_EN, [unit.code, "", 20, 30]], bom=True))
    _run(str(path), "--campaign", campaign.slug, "--user", admin_user.username)
    target = Target.objects.get(campaign=campaign, unit=unit, scheme=Scheme.VSI)
    entry = target.history.get()
    assert (target.value, entry.history_user, entry.history_change_reason) == (20, admin_user, "import: dot-1.csv")
    output = _run(str(path), "--campaign", campaign.slug)
    assert "0 new, 0 changed, 2 unchanged" in output
    assert target.history.count() == 1


def test_any_problem_exits_non_zero_lists_it_and_saves_nothing(tmp_path, campaign, unit, foreign_unit):
    path = tmp_path / "t.csv"
    path.write_bytes(csv_bytes([HEADERS_EN, [unit.code, "", 20, 30], [foreign_unit.code, "", 1, "x"]]))
    from io import StringIO

    out = StringIO()
    with pytest.raises(CommandError, match="nothing was saved"):
        call_command("import_targets", str(path), "--campaign", campaign.slug, "--language", "en", stdout=out)
    text = out.getvalue()
    assert "ERROR [row 3, unit_code]" in text and "Tỉnh Nam Thử" in text
    assert "ERROR [row 3, hi_target]" in text
    assert not Target.objects.exists()


def test_it_refuses_an_unknown_campaign_a_missing_file_and_a_hostile_file(tmp_path, campaign):
    with pytest.raises(CommandError, match="slug"):
        _run(str(tmp_path / "x.csv"), "--campaign", "khong-co")
    with pytest.raises(CommandError, match="no such file"):
        _run(str(tmp_path / "x.csv"), "--campaign", campaign.slug)
    bad = tmp_path / "t.xlsx"
    bad.write_bytes(b"this is not a workbook")
    with pytest.raises(CommandError, match="not really an Excel workbook"):
        _run(str(bad), "--campaign", campaign.slug)


def test_the_command_leaves_an_audit_event_with_the_user_and_the_file(tmp_path, campaign, unit, admin_user):
    from audit.models import AuditEvent

    path = tmp_path / "chi-tieu-tinh.csv"
    path.write_bytes(csv_bytes([HEADERS_EN, [unit.code, "", 20, 30]], bom=True))
    _run(str(path), "--campaign", campaign.slug, "--user", admin_user.username)
    event = AuditEvent.objects.get(action=AuditEvent.Action.IMPORTED)
    assert event.user == admin_user and "chi-tieu-tinh.csv" in event.detail
