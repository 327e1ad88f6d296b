"""The total rows are moved in place by the incremental refresh: no index on the run (nothing reads by it), and on
PostgreSQL half of each page left free, so that those updates stay on their page (HOT) instead of writing every
index again."""

import django.db.models.deletion
from django.db import migrations, models


def fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE reports_attainmenttotal SET (fillfactor = 50)")


def fillfactor_reset(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE reports_attainmenttotal RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0011_daily_series_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="attainmenttotal",
            name="run",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="reports.recomputerun",
            ),
        ),
        migrations.RunPython(fillfactor, fillfactor_reset),
    ]
