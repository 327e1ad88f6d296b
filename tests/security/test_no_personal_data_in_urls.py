"""The enrollment list's "SI number or name" search keeps the term out of every address.

The filter form is POSTed; the answer redirects to the list with a short token standing for the term in this session.
Sorting, paging and export links repeat the token, never the SI number or the name.
"""

import datetime
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from participants.filters import MAX_SEARCHES, SEARCH_PARAM
from tests.factories import ParticipantFactory
from tests.participants.conftest import record

pytestmark = pytest.mark.django_db
D = datetime.date
SI_NUMBER = "2412345678"
NAME = "Trương Thị Tìm"
ADDRESS = re.compile(r'(?:href|action|src|hx-get|hx-post)="([^"]*)"')


@pytest.fixture
def listed(unit, commune, staff_user):
    for n, (si_number, name) in enumerate([(SI_NUMBER, NAME), ("2499999999", "Lê Văn Khác"), ("2488888888", "Ba")]):
        record(
            ParticipantFactory(si_number=si_number, full_name=name),
            unit=unit,
            commune=commune,
            start=D(2024, 3, 1),
            enrolled_on=D(2024, 3, 10 + n),
            user=staff_user,
        )


@pytest.fixture
def staff_client(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    return client


def _search(client, **fields):
    """Submits the list's filter form as a browser does: GET the page for the token, then POST it."""
    url = reverse("participants:enrollment_list")
    page = client.get(url).content.decode()
    assert 'method="post"' in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(url, {"csrfmiddlewaretoken": token, **fields})
    assert response.status_code == 302
    return response["Location"]


def _addresses(body: str) -> list[str]:
    return [unescape(address) for address in ADDRESS.findall(body)]


@pytest.mark.parametrize("term", [SI_NUMBER, "2412 345", NAME])
def test_a_search_by_si_number_or_name_never_puts_the_term_in_an_address(staff_client, listed, term):
    location = _search(staff_client, q=term, scheme="vsi", sort="-enrolled_on")
    assert term not in location and SI_NUMBER not in location and "q=" not in location
    assert f"{SEARCH_PARAM}=" in location and "scheme=vsi" in location

    response = staff_client.get(location)
    body = response.content.decode()
    assert response.status_code == 200
    # Found, and only that person; the search box shows the term (in the page, not in the address).
    assert NAME in body and "Lê Văn Khác" not in body
    assert 'name="q"' in body
    addresses = _addresses(body)
    assert any("sort=" in a for a in addresses) and any("_export=csv" in a for a in addresses)
    for address in addresses:
        assert SI_NUMBER not in address and "q=" not in address, address

    # The links keep the search: sorting and the export still hold only that person.
    sort_link = next(a for a in addresses if "sort=" in a and SEARCH_PARAM in a)
    assert "Lê Văn Khác" not in staff_client.get(reverse("participants:enrollment_list") + sort_link).content.decode()
    export = next(a for a in addresses if "_export=csv" in a)
    csv_text = staff_client.get(reverse("participants:enrollment_list") + export).content.decode("utf-8-sig")
    assert NAME in csv_text and "Lê Văn Khác" not in csv_text


def test_a_token_means_nothing_in_another_session(listed, staff_client, staff_user):
    location = _search(staff_client, q=SI_NUMBER)
    stranger = Client()
    stranger.force_login(staff_user)  # the same officer in another browser: a session of its own
    body = stranger.get(location).content.decode()
    assert "Lê Văn Khác" in body  # no search applied
    assert SI_NUMBER not in re.findall(r'name="q"[^>]*', body)[0]


def test_an_empty_search_redirects_to_the_plain_list_with_the_other_filters(staff_client, listed):
    assert _search(staff_client, q="  ", scheme="") == reverse("participants:enrollment_list")
    location = _search(staff_client, q="", enrolled_from="11/03/2024")
    assert parse_qs(urlsplit(location).query) == {"enrolled_from": ["11/03/2024"]}


def test_the_session_keeps_only_the_latest_searches(staff_client, listed):
    locations = [_search(staff_client, q=f"Tên {n}") for n in range(MAX_SEARCHES + 5)]
    assert len(staff_client.session["enrollment_searches"]) == MAX_SEARCHES
    newest = staff_client.get(locations[-1]).content.decode()
    assert f"Tên {MAX_SEARCHES + 4}" in newest


def test_a_post_without_the_csrf_token_is_refused(staff_client, listed):
    response = staff_client.post(reverse("participants:enrollment_list"), {"q": SI_NUMBER})
    assert response.status_code == 403
    assert "enrollment_searches" not in staff_client.session


def test_the_person_lookup_takes_the_si_number_in_the_body_only(client, staff_user, listed):
    staff_client = client
    staff_client.force_login(staff_user)
    lookup = reverse("participants:participant_lookup")
    form = staff_client.get(reverse("participants:enrollment_create")).content.decode()
    assert f'hx-post="{lookup}"' in form and f'hx-get="{lookup}"' not in form
    assert staff_client.get(lookup, {"si_number": SI_NUMBER}).status_code == 405
    answer = staff_client.post(lookup, {"si_number": SI_NUMBER}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and NAME in answer.content.decode()
