"""Hand-written hostile inputs over the forms, filters, imports and API: 0 accepted that should not be, 0 server
errors, 0 rows changed.

Each parametrised case is one input. The count of cases is printed by `pytest tests/security --collect-only -q`.
"""

import datetime
import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, Target
from participants.importing import COLUMNS, import_plan
from participants.models import Enrollment, Participant
from tests.factories import AgentFactory, CampaignFactory, CommuneFactory, OrganisationFactory
from tests.security.hostile import CONTROL, FORMULAS, MARKUP, SQL, row_counts, valid_entry

TODAY = datetime.date.today()  # noqa: DTZ011 (only used to build far-off dates below)


@pytest.fixture(autouse=True)
def _english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


# --------------------------------------------------------------------------------------------- the entry form

SI_REJECTED = [
    "",
    " ",
    "123456789",
    "12345678901",
    "24012345a7",
    "2401234567\u200b",
    "\u200b2401234567",
    "2401\u200d234567",
    "٢٤٠١٢٣٤٥٦٧",
    "२४०१२३४५६७",
    "24O1234567",
    "+2401234567",
    "2.401234567e9",
    "0x8F0D1807",
    "2401234567\x00",
    "2401234567/",
    "2401234567;",
    "24012345678901234567890",
    "1" * 1000,
    "２４０１２３４５６７８",
    "2401234567 2401234567",
    "２４０１２３４５６",
    *SQL,
    *MARKUP[:2],
    *FORMULAS[:2],
]
SI_NORMALISED = [
    "２４０１２３４５６７",
    "2401 234 567",
    "2401.234.567",
    "2401-234-567",
    "\u00a02401234567\u00a0",
    "2401234567.0",
    "-2401234567",
]

NAME_REJECTED = ["", "   ", "a" * 121, "Nguyễn " * 500, "Nguyễn\x00Hoa", "\x00"]
NAME_STORED_ESCAPED = [
    *MARKUP,
    *SQL[:3],
    *FORMULAS,
    "Nguyễn\u202eHoa",
    "O'Brien",
    'Lê "Tèo"',
    "Trần & Con",
    "😀 Hoa",
    *CONTROL[2:],
]

BAD_DATES = [
    "31/02/2024",
    "30/02/2024",
    "29/02/2023",
    "00/01/2024",
    "32/01/2024",
    "01/13/2024",
    "2024-02-30",
    "2024-13-01",
    "01/01/0000",
    "0000-01-01",
    "1/1/1",
    "tomorrow",
    "yesterday",
    "14/03/20245",
    "14/03/-2024",
    "-1",
    "1e10",
    "14\x00/03/2024",
    "14/03",
    "2024",
    "99999999",
    "14-03-2024T00:00",
    "NaN",
    "null",
    "None",
    *SQL[:2],
    MARKUP[0],
]
DATES_OUT_OF_RANGE = {
    "date_of_birth": [(TODAY + datetime.timedelta(days=1)).strftime("%d/%m/%Y"), "31/12/9999", "01/01/1800"],
    "enrolled_on": [(TODAY + datetime.timedelta(days=1)).strftime("%d/%m/%Y"), "31/12/9999", "01/01/1800"],
}

CHOICES_REJECTED = [
    ("gender", "x"),
    ("gender", ""),
    ("gender", "MALE "),
    ("gender", "female\x00"),
    ("gender", "0"),
    ("scheme", "VSI"),
    ("scheme", "vsi "),
    ("scheme", "hi"),
    ("scheme", ""),
    ("scheme", "bhxh"),
    ("scheme", SQL[0]),
    ("months", "0"),
    ("months", "-12"),
    ("months", "13"),
    ("months", "12.5"),
    ("months", "1e1"),
    ("months", ""),
    ("months", "99999999999999999999999"),
    ("months", "twelve"),
    ("months", "١٢"),
    ("months", "12\x00"),
    ("commune", ""),
    ("commune", "abc"),
    ("commune", "-1"),
    ("commune", "999999999"),
    ("commune", "1 OR 1=1"),
    ("commune", "99999999999999999999999"),
    ("agent", "abc"),
    ("agent", "999999999"),
    ("agent", "-1"),
    ("organisation", "abc"),
    ("organisation", "999999999"),
]


def _post_entry(client, data):
    return client.post(reverse("participants:enrollment_create"), data)


def _refused(client, data):
    before = row_counts()
    response = _post_entry(client, data)
    assert response.status_code == 200, f"expected the form back with a message, got {response.status_code}"
    assert response.context["form"].errors, "no message tells the officer what is wrong"
    assert row_counts() == before
    return response


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize("value", SI_REJECTED)
def test_a_hostile_si_number_is_refused_and_nothing_is_saved(staff, commune, today, value):
    response = _refused(staff, valid_entry(commune, today, si_number=value))
    assert "si_number" in response.context["form"].errors


@pytest.mark.parametrize("value", SI_NORMALISED)
def test_a_typed_si_number_is_stored_as_its_ten_ascii_digits(staff, commune, today, value):
    assert _post_entry(staff, valid_entry(commune, today, si_number=value)).status_code == 302
    assert list(Participant.objects.values_list("si_number", flat=True)) == ["2401234567"]


@pytest.mark.parametrize("value", NAME_REJECTED)
def test_a_hostile_name_is_refused_and_nothing_is_saved(staff, commune, today, value):
    _refused(staff, valid_entry(commune, today, full_name=value))


@pytest.mark.parametrize("value", NAME_STORED_ESCAPED)
def test_a_name_with_markup_or_formula_is_stored_as_text_and_shown_escaped(staff, commune, today, value):
    assert _post_entry(staff, valid_entry(commune, today, full_name=value)).status_code == 302
    enrollment = Enrollment.objects.get()
    stored = enrollment.participant.full_name
    assert stored == " ".join(value.split())
    pages = [
        staff.get(reverse("participants:enrollment_list")),
        staff.get(reverse("participants:enrollment_detail", kwargs={"pk": enrollment.pk})),
        staff.post(reverse("participants:participant_lookup"), {"si_number": "2401234567"}),
    ]
    for page in pages:
        body = page.content.decode()
        assert page.status_code == 200
        if "<" in stored or ">" in stored:
            assert stored not in body, "markup from a name reached the page unescaped"
    # The detail page shows the name literally: escaped once, never run as a template or as markup.
    assert html.escape(stored) in pages[1].content.decode()
    export = staff.get(reverse("participants:enrollment_list"), {"_export": "csv"}).content.decode("utf-8-sig")
    for line in export.splitlines()[1:]:
        for cell in re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', line):
            assert not cell.strip('"').startswith(("=", "+", "-", "@")), f"a live formula in the export: {cell}"


@pytest.mark.parametrize("field", ["date_of_birth", "enrolled_on", "coverage_start"])
@pytest.mark.parametrize("value", BAD_DATES)
def test_an_impossible_or_malformed_date_is_refused(staff, commune, today, field, value):
    response = _refused(staff, valid_entry(commune, today, **{field: value}))
    assert response.context["form"].errors


@pytest.mark.parametrize(
    "field,value", [(f, v) for f, values in DATES_OUT_OF_RANGE.items() for v in values], ids=lambda x: str(x)[:20]
)
def test_a_date_outside_what_is_possible_for_the_person_is_refused(staff, commune, today, field, value):
    _refused(staff, valid_entry(commune, today, **{field: value}))


def test_a_vsi_participant_must_be_fifteen_on_the_day_recorded(staff, commune, today):
    _refused(
        staff,
        valid_entry(commune, today, date_of_birth=(today - datetime.timedelta(days=365 * 10)).strftime("%d/%m/%Y")),
    )


def test_family_health_insurance_is_for_twelve_months_only(staff, commune, today):
    _refused(staff, valid_entry(commune, today, scheme="hi_family", months="6"))


@pytest.mark.parametrize("field,value", CHOICES_REJECTED)
def test_a_value_outside_the_choices_is_refused(staff, commune, today, field, value):
    _refused(staff, valid_entry(commune, today, **{field: value}))


def test_a_commune_of_another_unit_is_refused(staff, commune, other_commune, today):
    _refused(staff, valid_entry(commune, today, commune=other_commune.pk))


def test_a_commune_of_another_province_is_refused(staff, commune, foreign_unit, today):
    foreign = CommuneFactory(district=foreign_unit, code="98801")
    _refused(staff, valid_entry(commune, today, commune=foreign.pk))


def test_an_agent_and_an_organisation_of_another_province_are_refused(staff, commune, other_province, today):
    organisation = OrganisationFactory(province=other_province, code="TCDV-X")
    agent = AgentFactory(organisation=organisation, code="NVT-X")
    _refused(staff, valid_entry(commune, today, agent=agent.pk))
    _refused(staff, valid_entry(commune, today, organisation=organisation.pk))


MASS_ASSIGNMENT = [
    {"recorded_by": "ADMIN"},
    {"kind": "renewal"},
    {"coverage_end": "01/01/2099"},
    {"unit": "OTHER_UNIT"},
    {"unit_obj": "OTHER_UNIT"},
    {"id": "999999"},
    {"pk": "999999"},
    {"participant": "999999"},
    {"created_at": "2000-01-01"},
    {"history_user": "ADMIN"},
    {"is_superuser": "on", "is_staff": "on"},
    {"province": "OTHER_PROVINCE"},
]


@pytest.mark.parametrize("extra", MASS_ASSIGNMENT, ids=lambda d: ",".join(d))
def test_fields_the_form_does_not_offer_are_ignored(
    staff, staff_user, admin_user, unit, other_unit, other_province, commune, today, extra
):
    swap = {"ADMIN": admin_user.pk, "OTHER_UNIT": other_unit.pk, "OTHER_PROVINCE": other_province.pk}
    data = valid_entry(commune, today, **{k: swap.get(v, v) for k, v in extra.items()})
    assert _post_entry(staff, data).status_code == 302
    enrollment = Enrollment.objects.get()
    assert enrollment.unit == unit and enrollment.recorded_by == staff_user
    assert enrollment.kind == "new" and enrollment.pk != 999999
    assert enrollment.coverage_end.year < 2099
    staff_user.refresh_from_db()
    assert not staff_user.is_superuser and not staff_user.is_staff


# --------------------------------------------------------------------------------------------- filters of lists

LIST_FILTERS = [("q", v) for v in [*SQL, *MARKUP[:3], "a" * 5000, "\x00", "%%%%", "\\", "(", "[", ".*"]] + [
    ("enrolled_from", "2024-02-30"),
    ("enrolled_from", "x"),
    ("enrolled_to", "99999-01-01"),
    ("enrolled_to", SQL[0]),
    ("unit", "999999"),
    ("unit", "abc"),
    ("unit", "FOREIGN_UNIT"),
    ("commune", "FOREIGN_COMMUNE"),
    ("commune", "-1"),
    ("agent", "x"),
    ("scheme", "nope"),
    ("kind", "nope"),
    ("recorded_by", "x"),
    ("page", "-1"),
    ("page", "abc"),
    ("page", "99999999"),
    ("page", "1e9"),
    ("sort", "participant__si_number"),
    ("sort", "-nonexistent"),
    ("sort", SQL[1]),
    ("per_page", "100000000"),
    ("per_page", "0"),
    ("per_page", "-5"),
    ("_export", "pdf"),
    ("_export", "../../etc/passwd"),
    ("_export", "csv\x00"),
]


@pytest.fixture
def canary(foreign_unit, foreign_admin_user, today):
    from participants.models import Scheme
    from participants.services import enrollment_record
    from tests.factories import ParticipantFactory

    commune = CommuneFactory(district=foreign_unit, code="98802", name="Xã Canary")
    return enrollment_record(
        participant=ParticipantFactory(si_number="2488880001", full_name="Canary Ngoại Tỉnh"),
        scheme=Scheme.VSI,
        enrolled_on=today,
        coverage_start=today,
        months=12,
        unit=foreign_unit,
        commune=commune,
        recorded_by=foreign_admin_user,
    )


@pytest.mark.parametrize("param,value", LIST_FILTERS)
@pytest.mark.parametrize("role", ["staff_user", "admin_user"])
def test_a_hostile_filter_never_errors_and_never_widens_the_scope(request, client, canary, role, param, value):
    swap = {"FOREIGN_UNIT": canary.unit_id, "FOREIGN_COMMUNE": canary.commune_id}
    client.force_login(request.getfixturevalue(role))
    response = client.get(reverse("participants:enrollment_list"), {param: swap.get(value, value)})
    assert response.status_code in (200, 400, 404)
    body = response.content.decode("utf-8", errors="replace")
    assert "2488880001" not in body and "Canary Ngoại Tỉnh" not in body


# --------------------------------------------------------------------------------------------- campaigns

CAMPAIGN_REJECTED = [
    {"name": ""},
    {"name": "x" * 201},
    {"name": "a\x00b"},
    {"slug": "../etc"},
    {"slug": "a b"},
    {"slug": "x" * 81},
    {"slug": "<script>"},
    {"slug": "new"},
    {"slug": "a/b"},
    {"slug": "a\x00"},
    {"start_date": "31/02/2024"},
    {"end_date": "2024-13-01"},
    {"start_date": "x"},
    {"start_date": "2024-04-01", "end_date": "2024-03-31"},
    {"status": "deleted"},
    {"status": ""},
    {"measure": "x"},
    {"measure": SQL[0]},
    {"description": "a\x00"},
]


def _campaign_data(**overrides):
    data = {
        "name": "Tháng vận động",
        "slug": "thang-van-dong",
        "start_date": "2024-03-14",
        "end_date": "2024-03-31",
        "status": "active",
        "measure": Campaign.Measure.WINDOW,
        "description": "",
    }
    data.update(overrides)
    return data


def test_the_base_campaign_is_valid(client, admin_user, province):
    client.force_login(admin_user)
    assert client.post(reverse("campaigns:campaign_create"), _campaign_data()).status_code == 302
    assert Campaign.objects.get().province == province


@pytest.mark.parametrize("overrides", CAMPAIGN_REJECTED, ids=lambda d: ",".join(f"{k}" for k in d))
def test_a_hostile_campaign_is_refused_and_nothing_is_saved(client, admin_user, overrides):
    client.force_login(admin_user)
    before = row_counts()
    response = client.post(reverse("campaigns:campaign_create"), _campaign_data(**overrides))
    assert response.status_code == 200
    assert response.context["form"].errors
    assert row_counts() == before


def test_an_admin_cannot_create_a_campaign_in_another_province(client, admin_user, province, other_province):
    client.force_login(admin_user)
    response = client.post(reverse("campaigns:campaign_create"), _campaign_data(province=other_province.pk))
    assert response.status_code == 302
    assert list(Campaign.objects.values_list("province", flat=True)) == [province.pk]


TARGET_VALUES_REJECTED = ["-1", "10000001", "abc", "1.5", "1e3", "\x00", "=1+1", str(2**63), "--1", "0x10"]


def test_a_plain_target_value_is_saved(client, admin_user, province, unit):
    campaign = CampaignFactory(province=province)
    client.force_login(admin_user)
    client.post(reverse("campaigns:campaign_targets", args=[campaign.slug]), {f"t_{unit.pk}_vsi": "40"})
    assert Target.objects.get(unit=unit).value == 40


@pytest.mark.parametrize("value", TARGET_VALUES_REJECTED)
def test_a_hostile_target_value_is_refused_and_changes_nothing(client, admin_user, province, unit, value):
    campaign = CampaignFactory(province=province)
    client.force_login(admin_user)
    before = row_counts()
    response = client.post(reverse("campaigns:campaign_targets", args=[campaign.slug]), {f"t_{unit.pk}_vsi": value})
    assert response.status_code in (200, 400)
    assert row_counts() == before


def test_a_target_for_a_unit_of_another_province_is_ignored(client, admin_user, province, foreign_unit):
    campaign = CampaignFactory(province=province)
    client.force_login(admin_user)
    client.post(reverse("campaigns:campaign_targets", args=[campaign.slug]), {f"t_{foreign_unit.pk}_vsi": "50"})
    assert not Target.objects.filter(unit=foreign_unit).exists()


# --------------------------------------------------------------------------------------------- the API

AS_OF_REJECTED = [
    "2024-02-30",
    "2024-13-01",
    "x",
    "31/03/2024",
    "2024-3-31x",
    "0000-01-01",
    "99999-01-01",
    SQL[0],
    "\x00",
    "2024-03-31T00:00:00",
    "a" * 5000,
    "-1",
    "2024-03-31%00",
    "１２０２４-03-31",
]


def test_a_plain_as_of_answers_200(client, admin_user, province):
    campaign = CampaignFactory(province=province, slug="api-campaign")
    client.force_login(admin_user)
    response = client.get(reverse("api:campaign_attainment", args=[campaign.slug]), {"as_of": "2024-03-20"})
    assert response.status_code == 200


@pytest.mark.parametrize("value", AS_OF_REJECTED)
def test_a_hostile_as_of_answers_400_in_json(client, admin_user, province, value):
    campaign = CampaignFactory(province=province, slug="api-campaign")
    client.force_login(admin_user)
    response = client.get(reverse("api:campaign_attainment", args=[campaign.slug]), {"as_of": value})
    assert response.status_code == 400
    assert response.json()


@pytest.mark.parametrize("slug", ["nope", "..", "a" * 80, "api-campaign'", "%00"])
def test_an_unknown_campaign_in_the_api_answers_404(client, admin_user, province, slug):
    CampaignFactory(province=province, slug="api-campaign")
    client.force_login(admin_user)
    response = client.get(f"/api/v1/campaigns/{slug}/attainment/")
    assert response.status_code == 404


# --------------------------------------------------------------------------------------------- import rows

IMPORT_CELLS = {
    "si_number": SI_REJECTED[:12],
    "date_of_birth": BAD_DATES[:10],
    "enrolled_on": BAD_DATES[10:18],
    "coverage_start": BAD_DATES[18:24],
    "gender": ["x", "MALE?", "0", SQL[0]],
    "scheme": ["bhxh", "hi", SQL[0], MARKUP[0]],
    "months": ["0", "-12", "13", "12.5", "twelve", "99999999999"],
    "commune_code": ["FOREIGN", "OTHER_UNIT", "nope", SQL[0], "1e5"],
    "collection_agent_code": ["nope", SQL[0]],
    "full_name": ["a\x00b"],
}


def _import_row(commune, today, **overrides):
    row = {
        "_row": 2,
        "si_number": "2401234567",
        "full_name": "Nguyễn Thị Hoa",
        "date_of_birth": "1985-06-01",
        "gender": "female",
        "commune_code": commune.code,
        "scheme": "vsi",
        "enrolled_on": today.isoformat(),
        "coverage_start": today.isoformat(),
        "months": "12",
        "collection_agent_code": "",
    }
    row.update(overrides)
    return row


def test_the_base_import_row_is_valid(staff_user, commune, today):
    plan = import_plan(rows=[_import_row(commune, today)], user=staff_user)
    assert plan.counts()["create"] == 1 and not plan.errors


@pytest.mark.parametrize(
    "column,value",
    [
        pytest.param(c, *v.values, marks=v.marks) if hasattr(v, "marks") else (c, v)
        for c, values in IMPORT_CELLS.items()
        for v in values
    ],
    ids=lambda x: repr(x)[:24],
)
def test_a_hostile_import_cell_is_an_error_on_its_row_and_column(
    staff_user, commune, other_commune, foreign_unit, today, column, value
):
    assert column in COLUMNS
    swap = {"FOREIGN": CommuneFactory(district=foreign_unit, code="98803").code, "OTHER_UNIT": other_commune.code}
    before = row_counts()
    plan = import_plan(rows=[_import_row(commune, today, **{column: swap.get(value, value)})], user=staff_user)
    assert plan.counts()["create"] == 0
    assert [r.number for r in plan.errors] == [2]
    assert plan.errors[0].errors, "the error does not say which column"
    assert row_counts() == before


# --------------------------------------------------------------------------------------------- CSRF

CSRF_POSTS = [
    ("staff_user", "participants:enrollment_create", None),
    ("staff_user", "participants:enrollment_upload", None),
    ("staff_user", "accounts:password_change", None),
    ("staff_user", "accounts:otp_setup", None),
    ("staff_user", "logout", None),
    ("admin_user", "campaigns:campaign_create", None),
    ("admin_user", "campaigns:campaign_edit", "slug"),
    ("admin_user", "campaigns:campaign_targets", "slug"),
    ("admin_user", "campaigns:target_import", "slug"),
    ("admin_user", "reports:recompute_start", "slug"),
]


@pytest.mark.parametrize("role,name,arg", CSRF_POSTS)
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    request, province, commune, today, role, name, arg
):
    campaign = CampaignFactory(province=province, slug="csrf-campaign")
    client = Client(enforce_csrf_checks=True)
    client.force_login(request.getfixturevalue(role))
    before = row_counts() | {"campaign_name": Campaign.objects.get().name}
    url = reverse(name, args=[campaign.slug] if arg else None)
    response = client.post(url, valid_entry(commune, today) | _campaign_data(name="Changed", slug="csrf-campaign"))
    assert response.status_code == 403
    assert row_counts() | {"campaign_name": Campaign.objects.get().name} == before


# --------------------------------------------------------------------------------------------- NUL bytes in codes


@pytest.mark.parametrize(
    "column",
    [
        "commune_code",
        "collection_agent_code",
        "si_number",
        "full_name",
        "gender",
        "scheme",
        "months",
    ],
)
def test_a_nul_byte_in_an_enrollment_code_cell_is_an_error_not_a_crash(staff_user, commune, today, column):
    before = row_counts()
    plan = import_plan(rows=[_import_row(commune, today, **{column: "97\x00001"})], user=staff_user)
    assert plan.counts()["create"] == 0 and plan.errors
    assert row_counts() == before


@pytest.mark.parametrize("column", ["unit_code", "unit_name", "vsi", "hi_family"])
def test_a_nul_byte_in_a_target_file_unit_cell_is_answered_not_a_crash(province, unit, column):
    from campaigns import importing

    campaign = CampaignFactory(province=province)
    cells = {"unit_code": unit.code, "unit_name": unit.name, "vsi": "10", "hi_family": "10", column: "92\x0021"}
    table = importing.Table(headers={k: k for k in cells}, rows=[{"line": 2, "cells": cells}])
    before = row_counts()
    preview = importing.build_preview(campaign, table)
    # The other column may still identify the unit; what matters is an answer, not a crash, and no write.
    assert preview.rows
    assert row_counts() == before
