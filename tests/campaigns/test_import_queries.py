"""A target import writes in a constant number of queries, however many units the file lists."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import importing
from campaigns.models import Target
from tests.factories import CampaignFactory, DistrictFactory

pytestmark = pytest.mark.django_db


def _table(units, value):
    cells = [{"unit_code": u.code, "unit_name": u.name, "vsi": str(value), "hi_family": str(value + 1)} for u in units]
    return importing.Table(
        headers={k: k for k in ("unit_code", "unit_name", "vsi", "hi_family")},
        rows=[{"line": i + 2, "cells": c} for i, c in enumerate(cells)],
    )


def _queries_to_import(campaign, units, value, user):
    with CaptureQueriesContext(connection) as ctx:
        importing.import_apply(campaign=campaign, table=_table(units, value), user=user, file_name="chi-tieu.xlsx")
    return len(ctx.captured_queries)


def test_importing_forty_units_takes_no_more_queries_than_importing_four(province, admin_user):
    small, large = CampaignFactory(province=province), CampaignFactory(province=province)
    units = [DistrictFactory(province=province, code=f"95{n:02d}", name=f"Huyện Số {n}") for n in range(40)]
    few = _queries_to_import(small, units[:4], 20, admin_user)
    many = _queries_to_import(large, units, 20, admin_user)
    assert Target.objects.filter(campaign=large).count() == 80
    assert many <= few
    # Changing them all again is as cheap, and every change is in the history with who and which file.
    again = _queries_to_import(large, units, 25, admin_user)
    assert again <= few + 2
    changed = Target.history.filter(campaign_id=large.pk, value=25)
    assert changed.count() == 40
    assert {(h.history_user_id, h.history_change_reason) for h in changed} == {(admin_user.pk, "import: chi-tieu.xlsx")}
