"""Property tests (hypothesis) on every form and import parser: whatever arrives, the answer is a clear refusal or
a clean value, never a server error, and a refusal changes no row."""

import datetime
import ipaddress
import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.masking import mask_personal
from campaigns import importing as target_import
from campaigns.forms import CampaignForm, TargetGridForm
from participants import importing as enrollment_import
from participants.forms import EnrollmentForm
from participants.models import ALLOWED_MONTHS, Enrollment
from participants.services import si_number_normalise
from tests.factories import CampaignFactory
from tests.security.hostile import row_counts, valid_entry

pytestmark = pytest.mark.django_db

ON_POSTGRES = connection.vendor == "postgresql"

DB_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PURE_SETTINGS = settings(max_examples=300, deadline=None)

# Text that looks like what people and spreadsheets send, with the awkward parts over-represented.
awkward_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789 .-/\u00a0\u200b０１２３４５６７８９٠١٢", max_size=24),
    st.sampled_from(["", " ", "\x00", "=1+1", "<script>", "' OR 1=1--", "2401234567", "31/02/2024", "1e9", "-1"]),
)


# --------------------------------------------------------------------------------------------- pure parsers


@PURE_SETTINGS
@given(awkward_text)
def test_an_si_number_is_ten_ascii_digits_or_a_validation_error(text):
    from django.core.exceptions import ValidationError

    try:
        value = si_number_normalise(text)
    except ValidationError as exc:
        assert exc.messages
    else:
        assert re.fullmatch(r"[0-9]{10}", value)


@PURE_SETTINGS
@given(awkward_text)
def test_an_import_date_is_a_date_or_a_value_error_with_a_message(text):
    try:
        value = enrollment_import.parse_date(text)
    except ValueError as exc:
        assert exc.args[0]
    else:
        assert isinstance(value, datetime.date)


@PURE_SETTINGS
@given(st.one_of(awkward_text, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none()))
def test_a_target_cell_is_a_non_negative_whole_number_or_a_message(value):
    number, problem = target_import.parse_target(value)
    assert number is None or (isinstance(number, int) and number >= 0)
    assert number is None or problem is None


@PURE_SETTINGS
@given(st.text(max_size=200))
def test_the_log_mask_leaves_no_run_of_ten_digits(text):
    assert not re.search(r"\d{10}", mask_personal(text))


@PURE_SETTINGS
@given(st.text(max_size=60), st.sampled_from(["HTTP_X_REAL_IP", "HTTP_X_FORWARDED_FOR"]))
def test_the_client_address_is_always_a_valid_ip(header_value, header):
    from django.test import RequestFactory, override_settings

    from accounts.network import client_ip

    with override_settings(CLIENT_IP_HEADERS=[header, "REMOTE_ADDR"]):
        request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", **{header: header_value})
        ipaddress.ip_address(client_ip(request))


# --------------------------------------------------------------------------------------------- file parsers

file_bytes = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(lambda t: t.encode("utf-8")),
    st.lists(st.lists(awkward_text, min_size=1, max_size=6), max_size=8).map(
        lambda rows: "\n".join(",".join(r) for r in rows).encode("utf-8")
    ),
    st.binary(max_size=500).map(lambda b: b"PK\x03\x04" + b),
)


@DB_SETTINGS
@given(file_bytes, st.sampled_from(["x.csv", "x.xlsx", "x.txt", "x"]))
def test_the_enrollment_file_reader_returns_rows_or_refuses_with_a_message(db, data, name):
    try:
        rows = enrollment_import.read_table(name=name, data=data)
    except enrollment_import.ImportFileError as exc:
        assert str(exc)
    else:
        assert isinstance(rows, list)


@DB_SETTINGS
@given(file_bytes, st.sampled_from(["x.csv", "x.xlsx", "x"]))
def test_the_target_file_reader_returns_a_table_or_refuses_with_a_message(db, data, name):
    try:
        table = target_import.read_table(data, name)
    except target_import.FileRejected as exc:
        assert exc.message
    else:
        assert isinstance(table.rows, list)


import_row = st.fixed_dictionaries({c: awkward_text for c in enrollment_import.COLUMNS})


@DB_SETTINGS
@given(st.lists(import_row, min_size=1, max_size=5))
def test_the_import_plan_checks_any_rows_without_writing_and_gives_each_a_status(staff_user, commune, rows):
    before = row_counts()
    plan = enrollment_import.import_plan(rows=[{"_row": i + 2, **r} for i, r in enumerate(rows)], user=staff_user)
    assert len(plan.rows) == len(rows)
    assert {r.status for r in plan.rows} <= {"create", "duplicate", "error"}
    for row in plan.errors:
        assert row.errors
    for row in plan.to_create:
        assert re.fullmatch(r"[0-9]{10}", row.cleaned["si_number"])
    assert row_counts() == before


@DB_SETTINGS
@given(
    st.lists(
        st.fixed_dictionaries({k: awkward_text for k in ("unit_code", "unit_name", "vsi", "hi_family")}), max_size=5
    )
)
def test_the_target_preview_takes_any_cells_without_writing(province, unit, cells):
    campaign = CampaignFactory(province=province)
    table = target_import.Table(
        headers={k: k for k in ("unit_code", "unit_name", "vsi", "hi_family")},
        rows=[{"line": i + 2, "cells": c} for i, c in enumerate(cells)],
    )
    before = row_counts()
    target_import.build_preview(campaign, table)
    assert row_counts() == before


# --------------------------------------------------------------------------------------------- forms

entry_fields = st.fixed_dictionaries(
    {},
    optional={
        name: awkward_text
        for name in (
            "si_number",
            "full_name",
            "date_of_birth",
            "gender",
            "commune",
            "scheme",
            "enrolled_on",
            "coverage_start",
            "months",
            "organisation",
            "agent",
            "unit",
        )
    },
)


@DB_SETTINGS
@given(entry_fields)
def test_the_entry_form_accepts_only_clean_values_in_the_users_unit(staff_user, unit, commune, today, overrides):
    form = EnrollmentForm(data=valid_entry(commune, today, **overrides), user=staff_user)
    if form.is_valid():
        data = form.cleaned_data
        assert re.fullmatch(r"[0-9]{10}", data["si_number"])
        assert data["commune"].district_id == unit.pk
        assert data["months"] in ALLOWED_MONTHS[data["scheme"]]
        assert "\x00" not in data["full_name"]
    else:
        assert form.errors


@DB_SETTINGS
@given(entry_fields)
def test_the_entry_page_never_errors_and_a_refusal_changes_nothing(staff_user, unit, commune, today, overrides):
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    before = row_counts()
    response = client.post(reverse("participants:enrollment_create"), valid_entry(commune, today, **overrides))
    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert row_counts() == before
    else:
        assert Enrollment.objects.count() == before["Enrollment"] + 1
        assert Enrollment.objects.latest("pk").unit_id == unit.pk
        Enrollment.objects.all().delete()


campaign_fields = st.fixed_dictionaries(
    {},
    optional={n: awkward_text for n in ("name", "slug", "start_date", "end_date", "status", "measure", "province")},
)


@DB_SETTINGS
@given(campaign_fields)
def test_the_campaign_form_keeps_the_window_in_order(admin_user, province, other_province, values):
    data = {"name": "Tháng vận động", "start_date": "2024-03-14", "end_date": "2024-03-31", "status": "draft"}
    data["measure"] = "window"
    form = CampaignForm(data={**data, **values}, user=admin_user)
    if form.is_valid():
        assert form.cleaned_data["end_date"] >= form.cleaned_data["start_date"]
        assert "province" not in form.cleaned_data
        assert form.cleaned_data["slug"]
    else:
        assert form.errors


@DB_SETTINGS
@given(st.dictionaries(st.sampled_from(["vsi", "hi_family"]), awkward_text, max_size=2))
def test_the_target_grid_accepts_only_whole_numbers_within_bounds(province, unit, values):
    form = TargetGridForm(data={f"t_{unit.pk}_{k}": v for k, v in values.items()}, units=[unit], values={})
    if form.is_valid():
        for value in form.cleaned_data.values():
            assert value is None or 0 <= value <= 10_000_000
    else:
        assert form.errors


@DB_SETTINGS
@given(awkward_text)
def test_the_api_answers_200_or_400_to_any_as_of(admin_user, province, value):
    campaign = CampaignFactory(province=province)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.get(reverse("api:campaign_attainment", args=[campaign.slug]), {"as_of": value})
    assert response.status_code in (200, 400)


@DB_SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["q", "enrolled_from", "enrolled_to", "unit", "commune", "scheme", "kind", "page", "sort"]),
        awkward_text,
        max_size=4,
    )
)
def test_the_enrollment_list_answers_any_filter_without_a_server_error(staff_user, params):
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    response = client.get(reverse("participants:enrollment_list"), params)
    assert response.status_code in (200, 400, 404)


@DB_SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(
            ["action", "username", "ip", "object_type", "object_id", "date_from", "date_to", "page", "sort"]
        ),
        awkward_text,
        max_size=4,
    )
)
def test_the_audit_page_answers_any_filter_without_a_server_error(admin_user, params):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.get(reverse("audit:event_list"), params)
    assert response.status_code in (200, 404)
