import datetime

import pytest

from tests.factories import AgentFactory, OrganisationFactory


@pytest.fixture
def agent(province, unit):
    organisation = OrganisationFactory(province=province, unit=unit, code="TCDV-T1", name="Bưu điện Yên Thử")
    return AgentFactory(organisation=organisation, code="NVT-T1", full_name="Lê Văn Thu")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def entry_data(commune, **overrides):
    """A valid entry form submission for a new VSI participant in `commune`."""
    data = {
        "si_number": "2401234567",
        "full_name": "Nguyễn Thị Hoa",
        "date_of_birth": "01/06/1985",
        "gender": "female",
        "commune": commune.pk,
        "scheme": "vsi",
        "enrolled_on": "14/03/2024",
        "coverage_start": "01/03/2024",
        "months": "12",
        "organisation": "",
        "agent": "",
    }
    data.update(overrides)
    return data


D = datetime.date


@pytest.fixture(autouse=True)
def _english(client):
    """Assertions read English; one test per page checks the Vietnamese text explicitly."""
    from django.utils import translation

    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


def login(client, user):
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def record(participant=None, *, unit, commune, scheme="vsi", start=None, months=12, enrolled_on=None, user=None, **kw):
    """Records an enrollment through the service (the only write path)."""
    from participants.services import enrollment_record
    from tests.factories import ParticipantFactory

    start = start or datetime.date(2024, 3, 1)
    return enrollment_record(
        participant=participant or ParticipantFactory(),
        scheme=scheme,
        enrolled_on=enrolled_on or start,
        coverage_start=start,
        months=months,
        unit=unit,
        commune=commune,
        recorded_by=user,
        **kw,
    )
