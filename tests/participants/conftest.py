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
