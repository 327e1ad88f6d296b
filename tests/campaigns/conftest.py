import csv
import io

import openpyxl
import pytest

from tests.factories import CampaignFactory


@pytest.fixture
def campaign(province, unit, other_unit):
    return CampaignFactory(province=province, slug="thang-van-dong-3-2024", name="Tháng vận động 3/2024")


@pytest.fixture
def foreign_campaign(other_province, foreign_unit):
    return CampaignFactory(province=other_province, slug="xa-thu-2024", name="Chiến dịch Xa Thử")


def xlsx_bytes(rows, *, sheet_title="Chỉ tiêu") -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = sheet_title
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_bytes(rows, *, encoding="utf-8", bom=False, delimiter=",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows([["" if v is None else v for v in row] for row in rows])
    return (("\ufeff" if bom else "") + out.getvalue()).encode(encoding)


def upload(data: bytes, name: str):
    f = io.BytesIO(data)
    f.name = name
    return f


HEADERS_VI = ["Mã đơn vị", "Tên đơn vị", "BHXH tự nguyện", "BHYT hộ gia đình"]
HEADERS_EN = ["unit_code", "unit_name", "vsi_target", "hi_target"]


@pytest.fixture
def import_queries_only():
    """The import's own queries: the dashboards' refresh a target change schedules after its commit (the reports
    app's receiver, tested in tests/reports/test_targets_refresh.py) is left out of the count."""
    from campaigns.signals import targets_changed

    receivers = targets_changed.receivers[:]
    targets_changed.receivers.clear()
    targets_changed.sender_receivers_cache.clear()
    yield
    targets_changed.receivers[:] = receivers
    targets_changed.sender_receivers_cache.clear()
