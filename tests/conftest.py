import datetime

import pytest

from districts.scoping import ROLE_ADMIN, ROLE_MANAGER, ROLE_STAFF
from tests.factories import CommuneFactory, DistrictFactory, ProvinceFactory, make_user


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The manifest storage needs collectstatic; tests serve the files as they are.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def province(db):
    return ProvinceFactory(code="924", name="Tỉnh Bắc Thử", codename="bac_thu")


@pytest.fixture
def other_province(db):
    return ProvinceFactory(code="925", name="Tỉnh Nam Thử", codename="nam_thu")


@pytest.fixture
def unit(province):
    return DistrictFactory(province=province, code="9221", name="Huyện Yên Thử")


@pytest.fixture
def other_unit(province):
    return DistrictFactory(province=province, code="9223", name="Huyện Hiệp Thử")


@pytest.fixture
def foreign_unit(other_province):
    return DistrictFactory(province=other_province, code="9301", name="Huyện Xa Thử")


@pytest.fixture
def commune(unit):
    return CommuneFactory(district=unit, code="97001", name="Xã Tân Thử")


@pytest.fixture
def other_commune(other_unit):
    return CommuneFactory(district=other_unit, code="97101", name="Xã Lạc Thử")


@pytest.fixture
def staff_user(province, unit):
    return make_user(ROLE_STAFF, province=province, unit=unit, username="staff1")


@pytest.fixture
def other_staff_user(province, other_unit):
    return make_user(ROLE_STAFF, province=province, unit=other_unit, username="staff2")


@pytest.fixture
def manager_user(province):
    return make_user(ROLE_MANAGER, province=province, username="manager1")


@pytest.fixture
def admin_user(province):
    return make_user(ROLE_ADMIN, province=province, username="admin1")


@pytest.fixture
def foreign_admin_user(other_province):
    return make_user(ROLE_ADMIN, province=other_province, username="admin2")


@pytest.fixture
def today():
    from django.utils import timezone

    return timezone.localdate()


@pytest.fixture
def march_2024():
    return datetime.date(2024, 3, 14), datetime.date(2024, 3, 31)


@pytest.fixture
def celery_eager():
    """Runs tasks in process whatever REDIS_URL says (CI sets it), restoring the app's configuration after."""
    from config.celery import app

    old = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = old
