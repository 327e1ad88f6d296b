"""The daily series is stored for the window campaigns only (the annual plans' pages draw none): the rows kept so far
for campaigns on the stock are removed. Going back leaves them absent until the next full run rebuilds them."""

from django.db import migrations

DELETE_STOCK_DAYS = """
DELETE FROM reports_attainmentdaily
WHERE campaign_id IN (SELECT id FROM campaigns_campaign WHERE measure = 'stock')
"""


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0015_marker_index_and_marks_without_own_indexes"),
        ("campaigns", "0001_initial"),
    ]

    operations = [migrations.RunSQL(DELETE_STOCK_DAYS, reverse_sql=migrations.RunSQL.noop)]
