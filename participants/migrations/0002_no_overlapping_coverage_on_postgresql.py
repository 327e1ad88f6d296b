"""On PostgreSQL the database itself refuses two overlapping coverages of one person in one scheme.

The service also locks the participant's row before it checks; this constraint is the last line under any other
write path. SQLite has no exclusion constraints, and serialises writers anyway.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """ALTER TABLE participants_enrollment ADD CONSTRAINT enrollment_no_overlapping_coverage
       EXCLUDE USING gist (participant_id WITH =, scheme WITH =,
                           daterange(coverage_start, coverage_end, '[)') WITH &&)""",
]
BACKWARD = ["ALTER TABLE participants_enrollment DROP CONSTRAINT IF EXISTS enrollment_no_overlapping_coverage"]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in FORWARD:
            schema_editor.execute(sql)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in BACKWARD:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("participants", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
