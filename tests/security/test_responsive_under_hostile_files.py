"""While one user uploads hostile files, another user's pages keep answering (the live, threaded server)."""

import os
import threading
import time
import urllib.request
import uuid

import pytest

from participants.models import Enrollment
from tests.security.hostile_files import sheet, xlsx

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CSRF = "a" * 32  # an unmasked CSRF secret: the same value in the cookie and in the form


def _multipart(fields: dict, file_name: str, data: bytes):
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.mark.django_db(transaction=True)
def test_other_users_pages_stay_responsive_while_hostile_files_are_checked(live_server, client, staff_user, commune):
    client.force_login(staff_user)
    cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={CSRF}"
    header = "si_number,full_name,date_of_birth,gender,commune_code,scheme,enrolled_on,coverage_start,months,x\n"
    files = [
        ("bomb.xlsx", xlsx(sheet([["a"]]).replace("</sheetData>", " " * 60_000_000 + "</sheetData>"))),
        ("million.csv", (header + "1,2\n" * 1_000_000).encode()),
        (
            "late-error.csv",
            (header + "2400000001,A,1985-01-01,female,x,vsi,2024-01-01,2024-01-01,12,\n" * 20_000).encode(),
        ),
    ]
    statuses, done = [], threading.Event()

    def hostile_uploads():
        try:
            for name, data in files:
                body, content_type = _multipart({"csrfmiddlewaretoken": CSRF}, name, data)
                request = urllib.request.Request(  # noqa: S310 (the live server)
                    f"{live_server.url}/enrollments/uploads/",
                    data=body,
                    headers={"Content-Type": content_type, "Cookie": cookie},
                    method="POST",
                )
                try:
                    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (the live server)
                        statuses.append(response.status)
                except urllib.error.HTTPError as exc:
                    statuses.append(exc.code)
        finally:
            done.set()

    uploader = threading.Thread(target=hostile_uploads)
    uploader.start()
    latencies = []
    while not done.is_set():
        started = time.monotonic()
        with urllib.request.urlopen(f"{live_server.url}/accounts/login/", timeout=30) as response:  # noqa: S310
            assert response.status == 200
        latencies.append(time.monotonic() - started)
        time.sleep(0.05)
    uploader.join()

    assert all(s < 500 for s in statuses) and len(statuses) == len(files), statuses
    assert len(latencies) >= 3, "the uploads finished before the other user's requests could be measured"
    assert max(latencies) < 3.0, f"the sign-in page took {max(latencies):.2f} s during the uploads"
    assert Enrollment.objects.count() == 0
    print(f"\nother user: {len(latencies)} requests, slowest {max(latencies):.2f} s; uploads answered {statuses}")
