import datetime

from django.contrib.humanize.templatetags.humanize import intcomma
from django.template import Context, Template
from django.utils import formats, translation


def test_vietnamese_numbers_are_grouped_with_dots_and_decimals_with_commas():
    with translation.override("vi"):
        assert intcomma(36421) == "36.421"
        assert formats.number_format(89.93, 2, use_l10n=True) == "89,93"


def test_vietnamese_dates_are_written_day_month_year_with_slashes():
    with translation.override("vi"):
        rendered = Template("{{ d|date:'SHORT_DATE_FORMAT' }} {{ d }}").render(Context({"d": datetime.date(2024, 3, 31)}))
        assert rendered == "31/03/2024 31/03/2024"


def test_english_numbers_keep_english_grouping():
    with translation.override("en"):
        assert intcomma(36421) == "36,421"
