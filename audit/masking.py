"""Masks for personal data in free text: the logs and the audit trail never carry an SI number."""

import logging
import re

# Ten or more digits in a row (any script's digits: \d is Unicode-aware) is an SI number, or could be one.
_DIGIT_RUN = re.compile(r"\d{10,}")
MASK = "[masked]"


def mask_personal(text: str) -> str:
    if not text:
        return text
    return _DIGIT_RUN.sub(MASK, str(text))


class PersonalDataFilter(logging.Filter):
    """A logging filter for every handler: renders the message, masks digit runs, and masks the traceback too."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = mask_personal(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_personal(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_personal(record.stack_info)
        return True
