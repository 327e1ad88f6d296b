"""Targets are rewritten in bulk (a national office's import changes ~1,500 at once) and their value is in no index:
with half of each page left free PostgreSQL updates them in place (HOT), touching none of the table's five indexes.
The table holds a few thousand rows, so the doubled size costs nothing. PostgreSQL only; the table is rewritten once
(CLUSTER on its primary key) so that the rows already there get the free space too."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE campaigns_target SET (fillfactor = 50)")
    schema_editor.execute("CLUSTER campaigns_target USING campaigns_target_pkey")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE campaigns_target RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0002_target_import")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
