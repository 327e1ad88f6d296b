"""import_targets FILE [FILE ...] --campaign SLUG [--campaign SLUG ...]: a national office's province files previewed
and imported in one run, each file into its own campaign, all or nothing across the files."""

import io

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from campaigns import importing
from campaigns.models import Target
from participants.models import Scheme
from tests.campaigns.conftest import HEADERS_EN, HEADERS_VI, csv_bytes, xlsx_bytes
from tests.factories import CampaignFactory, TargetFactory


@pytest.fixture
def north(province, unit, other_unit):
    return CampaignFactory(province=province, slug="cao-diem-bac-thu", name="Cao điểm Bắc Thử")


@pytest.fixture
def south(other_province, foreign_unit):
    return CampaignFactory(province=other_province, slug="cao-diem-nam-thu", name="Cao điểm Nam Thử")


def _run(*args) -> str:
    out = io.StringIO()
    call_command("import_targets", *args, "--language", "en", stdout=out)
    return out.getvalue()


def _files(tmp_path, unit, other_unit, foreign_unit, *, south_hi="40"):
    north_file = tmp_path / "chi-tieu-bac-thu.xlsx"
    north_file.write_bytes(
        xlsx_bytes([HEADERS_VI, [unit.code, "", 20, 30], ["", "Hiệp Thử", 5, 6], ["924", "", 99, 98]])
    )
    south_file = tmp_path / "chi-tieu-nam-thu.csv"
    south_file.write_bytes(csv_bytes([HEADERS_EN, [foreign_unit.code, "", 10, south_hi]], bom=True))
    return north_file, south_file


def test_a_dry_run_of_two_files_previews_each_campaign_and_saves_nothing(
    tmp_path, north, south, unit, other_unit, foreign_unit
):
    TargetFactory(campaign=north, unit=unit, scheme=Scheme.VSI, value=10)
    north_file, south_file = _files(tmp_path, unit, other_unit, foreign_unit)
    output = _run(str(north_file), str(south_file), "--campaign", north.slug, "--campaign", south.slug, "--dry-run")
    assert "== chi-tieu-bac-thu.xlsx → Cao điểm Bắc Thử (cao-diem-bac-thu, Tỉnh Bắc Thử) ==" in output
    assert "== chi-tieu-nam-thu.csv → Cao điểm Nam Thử (cao-diem-nam-thu, Tỉnh Nam Thử) ==" in output
    # Each file's rows under its own heading, with the old → new values of its own campaign.
    north_part, south_part = output.split("== chi-tieu-nam-thu.csv")
    assert "Huyện Yên Thử (9221)" in north_part and "10 → 20 (changed)" in north_part
    assert "Province-level target" in north_part
    assert "Huyện Xa Thử (9301)" in south_part and "— → 40 (new)" in south_part
    assert "2 files (0 with problems): 7 new, 1 changed, 0 unchanged targets; 0 problem(s)." in output
    assert "Dry run: nothing was saved." in output
    assert Target.objects.count() == 1


def test_two_files_are_imported_in_one_run_each_with_its_history_and_audit_event_and_again_change_nothing(
    tmp_path, north, south, unit, other_unit, foreign_unit, admin_user
):
    north_file, south_file = _files(tmp_path, unit, other_unit, foreign_unit)
    args = (str(north_file), str(south_file), "--campaign", north.slug, "--campaign", south.slug)
    output = _run(*args, "--user", admin_user.username)
    assert "Imported." in output
    assert {(t.unit_id, t.scheme, t.value) for t in Target.objects.filter(campaign=north)} == {
        (unit.pk, Scheme.VSI, 20),
        (unit.pk, Scheme.HI_FAMILY, 30),
        (other_unit.pk, Scheme.VSI, 5),
        (other_unit.pk, Scheme.HI_FAMILY, 6),
        (None, Scheme.VSI, 99),
        (None, Scheme.HI_FAMILY, 98),
    }
    assert {(t.unit_id, t.scheme, t.value) for t in Target.objects.filter(campaign=south)} == {
        (foreign_unit.pk, Scheme.VSI, 10),
        (foreign_unit.pk, Scheme.HI_FAMILY, 40),
    }
    # The history names each target's own file and who imported it.
    reasons = {
        (h.campaign_id, h.history_type, h.history_user_id, h.history_change_reason) for h in Target.history.all()
    }
    assert reasons == {
        (north.pk, "+", admin_user.pk, "import: chi-tieu-bac-thu.xlsx"),
        (south.pk, "+", admin_user.pk, "import: chi-tieu-nam-thu.csv"),
    }
    # One audit event per campaign, in that campaign's province's trail.
    events = AuditEvent.objects.filter(action=AuditEvent.Action.IMPORTED).order_by("object_id")
    assert [(e.object_id, e.province_id, e.user_id, e.detail) for e in events] == sorted(
        [
            (str(north.pk), north.province_id, admin_user.pk, "import_targets chi-tieu-bac-thu.xlsx"),
            (str(south.pk), south.province_id, admin_user.pk, "import_targets chi-tieu-nam-thu.csv"),
        ]
    )
    # The same files again: nothing changes, no history is written.
    output = _run(*args)
    assert "2 files (0 with problems): 0 new, 0 changed, 8 unchanged targets" in output
    assert Target.history.count() == 8


def test_each_file_may_be_followed_by_its_campaign(tmp_path, north, south, unit, other_unit, foreign_unit):
    north_file, south_file = _files(tmp_path, unit, other_unit, foreign_unit)
    output = _run(str(north_file), "--campaign", north.slug, str(south_file), "--campaign", south.slug)
    assert "2 files (0 with problems): 8 new" in output
    assert Target.objects.filter(campaign=south, unit=foreign_unit).count() == 2


def test_changed_targets_of_several_campaigns_are_updated_with_their_own_files_in_the_history(
    tmp_path, north, south, unit, other_unit, foreign_unit, admin_user
):
    north_file, south_file = _files(tmp_path, unit, other_unit, foreign_unit)
    args = (str(north_file), str(south_file), "--campaign", north.slug, "--campaign", south.slug)
    _run(*args)
    north_file.write_bytes(xlsx_bytes([HEADERS_VI, [unit.code, "", 21, 30]]))
    south_file.write_bytes(csv_bytes([HEADERS_EN, [foreign_unit.code, "", 11, 41]]))
    output = _run(*args, "--user", admin_user.username)
    assert "0 new, 3 changed, 1 unchanged" in output
    assert Target.objects.get(campaign=north, unit=unit, scheme=Scheme.VSI).value == 21
    assert Target.objects.get(campaign=south, unit=foreign_unit, scheme=Scheme.HI_FAMILY).value == 41
    changed = {(h.campaign_id, h.value, h.history_change_reason) for h in Target.history.filter(history_type="~")}
    assert changed == {
        (north.pk, 21, "import: chi-tieu-bac-thu.xlsx"),
        (south.pk, 11, "import: chi-tieu-nam-thu.csv"),
        (south.pk, 41, "import: chi-tieu-nam-thu.csv"),
    }


def test_a_problem_in_one_file_saves_nothing_from_any_file_and_says_which_file_and_row(
    tmp_path, north, south, unit, other_unit, foreign_unit, admin_user
):
    north_file, south_file = _files(tmp_path, unit, other_unit, foreign_unit, south_hi="bốn mươi")
    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing was saved"):
        call_command(
            "import_targets",
            str(north_file),
            str(south_file),
            "--campaign",
            north.slug,
            "--campaign",
            south.slug,
            "--user",
            admin_user.username,
            "--language",
            "en",
            stdout=out,
        )
    south_part = out.getvalue().split("== chi-tieu-nam-thu.csv")[1]
    assert "ERROR [row 2, hi_target] “bốn mươi” is not a number" in south_part
    assert "2 files (1 with problems)" in out.getvalue()
    assert not Target.objects.exists()
    assert not Target.history.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.IMPORTED).exists()


def test_a_file_for_another_province_than_its_campaign_is_refused_as_one_file_would_be(
    tmp_path, north, south, unit, other_unit, foreign_unit
):
    north_file, south_file = _files(tmp_path, unit, other_unit, foreign_unit)
    # Given in the wrong order: the south's file for the north's campaign.
    with pytest.raises(CommandError):
        _run(str(south_file), str(north_file), "--campaign", north.slug, "--campaign", south.slug)
    assert not Target.objects.exists()


def test_it_wants_one_campaign_per_file_and_each_campaign_once(tmp_path, north, south, unit, other_unit, foreign_unit):
    north_file, south_file = _files(tmp_path, unit, other_unit, foreign_unit)
    with pytest.raises(CommandError, match="one --campaign per file"):
        _run(str(north_file), str(south_file), "--campaign", north.slug)
    with pytest.raises(CommandError, match="more than once"):
        _run(str(north_file), str(south_file), "--campaign", north.slug, "--campaign", north.slug)
    with pytest.raises(CommandError, match="slug"):
        _run(str(north_file), str(south_file), "--campaign", north.slug, "--campaign", "khong-co", "--dry-run")
    with pytest.raises(CommandError, match="no such file"):
        _run(str(north_file), str(tmp_path / "x.csv"), "--campaign", north.slug, "--campaign", south.slug)
    assert not Target.objects.exists()


def test_the_import_functions_refuse_two_files_for_one_campaign(north, unit):
    table = importing.read_table(csv_bytes([HEADERS_EN, [unit.code, "", 1, 2]]))
    files = [importing.CampaignFile(campaign=north, table=table, file_name=n) for n in ("a.csv", "b.csv")]
    with pytest.raises(ValueError, match="twice"):
        importing.build_previews(files)
    with pytest.raises(ValueError, match="twice"):
        importing.import_apply_many(files=files, user=None)
    assert not Target.objects.exists()


# However many province files: the same queries as for one (test_import_queries holds one file to 3 and 11).
@pytest.mark.django_db(transaction=True)
def test_many_province_files_take_the_queries_of_one(tmp_path, django_assert_max_num_queries, import_queries_only):
    from tests.campaigns.test_import_queries import COMMIT_QUERIES, PREVIEW_QUERIES, _province_file
    from tests.factories import DistrictFactory, ProvinceFactory, UserFactory

    user = UserFactory(username="national")
    args, slugs = [], []
    for p in range(5):
        province = ProvinceFactory(code=f"8{p}", name=f"Tỉnh Nhiều {p}")
        campaign = CampaignFactory(province=province, slug=f"nhieu-{p}")
        units = [DistrictFactory(province=province, code=f"8{p}{n:02d}", name=f"Huyện Nhiều {p} {n}") for n in range(8)]
        args.append(str(_province_file(tmp_path / f"tinh-{p}.csv", units, 20 + p)))
        slugs += ["--campaign", campaign.slug]
    with django_assert_max_num_queries(PREVIEW_QUERIES):
        call_command("import_targets", *args, *slugs, "--dry-run", stdout=io.StringIO())
    with django_assert_max_num_queries(COMMIT_QUERIES):
        call_command("import_targets", *args, *slugs, "--user", user.username, stdout=io.StringIO())
    assert Target.objects.count() == 5 * 8 * 2
    assert AuditEvent.objects.filter(action=AuditEvent.Action.IMPORTED, user=user).count() == 5
