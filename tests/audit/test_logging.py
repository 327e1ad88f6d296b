"""The application's logs never contain an SI number or a person's name."""

import io
import logging

import pytest
from django.urls import reverse

from audit.masking import PersonalDataFilter, mask_personal
from participants.models import Enrollment

SI = "2412345678"
NAME = "Nguyễn Thị Kín"


@pytest.mark.parametrize(
    "text",
    [SI, f"Not Found: /enrollments/{SI}/", f"si={SI}&x=a", "２４１２３４５６７８", f"{SI}9", f"a{SI}b"],
)
def test_the_mask_hides_every_run_of_ten_or_more_digits(text):
    masked = mask_personal(text)
    assert "[masked]" in masked
    assert not any(ch.isdigit() for ch in masked)


def test_the_mask_leaves_short_numbers_alone():
    assert mask_personal("row 12 of 20000, 2024-03-14") == "row 12 of 20000, 2024-03-14"


def test_the_filter_masks_arguments_and_tracebacks():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "duplicate %s in row %d", (SI, 3), None)
    try:
        raise ValueError(f"Key (si_number)=({SI}) already exists")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    PersonalDataFilter().filter(record)
    text = logging.Formatter().format(record)
    assert SI not in text
    assert "duplicate [masked] in row 3" in text and "already exists" in text


@pytest.fixture
def captured_logs(settings):
    """The configured console handler, writing into a buffer for the duration of the test (its filters intact)."""
    handlers = [h for h in logging.getLogger().handlers if any(isinstance(f, PersonalDataFilter) for f in h.filters)]
    assert handlers, "the root logger has no handler with the personal-data filter"
    buffer = io.StringIO()
    previous = [h.setStream(buffer) for h in handlers]
    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    yield buffer
    logging.getLogger().setLevel(root_level)
    for handler, stream in zip(handlers, previous, strict=True):
        handler.setStream(stream)


def test_a_full_journey_logs_no_si_number_and_no_name(client, staff_user, unit, commune, today, captured_logs):
    client.post(reverse("login"), {"username": "staff1", "password": "wrong-password"})
    client.post(reverse("login"), {"username": "staff1", "password": "correct-horse-battery"})
    entry = {
        "si_number": SI,
        "full_name": NAME,
        "date_of_birth": "01/06/1985",
        "gender": "female",
        "commune": commune.pk,
        "scheme": "vsi",
        "enrolled_on": today.strftime("%d/%m/%Y"),
        "coverage_start": today.strftime("%d/%m/%Y"),
        "months": 12,
    }
    assert client.post(reverse("participants:enrollment_create"), entry).status_code == 302
    enrollment = Enrollment.objects.get(participant__si_number=SI)
    client.post(reverse("participants:enrollment_create"), entry)  # the same again: refused as a duplicate
    client.post(reverse("participants:participant_lookup"), {"si_number": SI})
    client.get(reverse("participants:enrollment_list"), {"q": SI})
    client.get(reverse("participants:enrollment_list"), {"q": NAME, "_export": "csv"})
    client.get(reverse("participants:enrollment_detail", kwargs={"pk": enrollment.pk}))
    client.get(f"/enrollments/{SI}/")  # a 404 whose path is an SI number: django.request logs it
    logging.getLogger("participants").warning("lookup of %s failed", SI)
    client.post(reverse("logout"))

    text = captured_logs.getvalue()
    assert "Not Found" in text and "[masked]" in text, "the journey did not reach the logs; the test proves nothing"
    assert SI not in text
    assert NAME not in text and "Kín" not in text

    # The audit trail of the same journey names objects by their keys only.
    from audit.models import AuditEvent

    events = list(AuditEvent.objects.values_list("username", "path", "object_id", "detail"))
    assert len(events) >= 6
    assert not [e for e in events if SI in " ".join(e) or NAME in " ".join(e)]
