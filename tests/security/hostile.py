"""Shared pieces of the hostile-input tests: a valid entry to spoil one field at a time, and row counters."""

from campaigns.models import Campaign, Target
from participants.models import Enrollment, Participant

# Values that no field of this product should ever take as they are.
SQL = ["' OR '1'='1", "1; DROP TABLE participants_enrollment;--", "1 UNION SELECT password FROM auth_user--", "%", "_"]
MARKUP = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg onload=alert(1)>",
    "javascript:alert(1)",
    "{{ 7|add:7 }}",
    "{% debug %}",
]
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd"]
CONTROL = ["\x00", "a\x00b", "\r\nSet-Cookie: x=1", "\u202eevil", "\ufeff", "\u200b"]


def valid_entry(commune_, today_, /, **overrides) -> dict:
    data = {
        "si_number": "2401234567",
        "full_name": "Nguyễn Thị Hoa",
        "date_of_birth": "01/06/1985",
        "gender": "female",
        "commune": commune_.pk,
        "scheme": "vsi",
        "enrolled_on": today_.strftime("%d/%m/%Y"),
        "coverage_start": today_.strftime("%d/%m/%Y"),
        "months": "12",
        "organisation": "",
        "agent": "",
    }
    data.update(overrides)
    return data


def row_counts() -> dict:
    return {model.__name__: model.objects.count() for model in (Participant, Enrollment, Campaign, Target)} | {
        "history": Enrollment.history.count()
    }
