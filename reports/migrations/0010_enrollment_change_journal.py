"""The enrollment change journal and, on PostgreSQL, the triggers that write it (see models.EnrollmentChange)."""

from django.db import migrations, models

JOIN = """
    JOIN districts_district d ON d.id = r.unit_id
    JOIN campaigns_campaign c ON c.province_id = d.province_id
     AND (r.enrolled_on BETWEEN c.start_date AND c.end_date
          OR (c.measure = 'stock' AND r.coverage_start <= c.end_date))"""

INSERT = """
    INSERT INTO reports_enrollmentchange
        (campaign_id, unit_id, scheme, kind, enrolled_on, coverage_start, coverage_end, sign)
    SELECT c.id, r.unit_id, r.scheme, r.kind, r.enrolled_on, r.coverage_start, r.coverage_end, SUM(%s)"""

# The rows of one statement summed per distinct change (an import of a day's list writes a few thousand journal rows,
# not one per enrollment; an edit's -1 and +1 of an unchanged group cancel).
GROUP = """
    GROUP BY c.id, r.unit_id, r.scheme, r.kind, r.enrolled_on, r.coverage_start, r.coverage_end
    HAVING SUM(r.sign) <> 0"""

# One row per changed enrollment and campaign its change can move (INSERT: +1, DELETE: -1). A trigger's function
# may only name the transition tables its trigger has, hence one body per event.
FUNCTION = f"""
CREATE OR REPLACE FUNCTION reports_enrollment_journal_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {INSERT % "r.sign"}
    FROM (SELECT *, 1 AS sign FROM new_rows) r {JOIN} {GROUP};
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION reports_enrollment_journal_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {INSERT % "r.sign"}
    FROM (SELECT *, -1 AS sign FROM old_rows) r {JOIN} {GROUP};
    RETURN NULL;
END
$$;
"""

# An UPDATE: -1 for the row as it was and +1 as it is, only for the rows whose counted columns changed (an edit of
# the agent or the organisation moves no figure).
CHANGED = """(o.unit_id, o.scheme, o.kind, o.enrolled_on, o.coverage_start, o.coverage_end)
        IS DISTINCT FROM (n.unit_id, n.scheme, n.kind, n.enrolled_on, n.coverage_start, n.coverage_end)"""

UPDATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION reports_enrollment_journal_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {INSERT % "r.sign"}
    FROM (
        SELECT o.unit_id, o.scheme, o.kind, o.enrolled_on, o.coverage_start, o.coverage_end, -1 AS sign
        FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {CHANGED}
        UNION ALL
        SELECT n.unit_id, n.scheme, n.kind, n.enrolled_on, n.coverage_start, n.coverage_end, 1
        FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {CHANGED}
    ) r {JOIN} {GROUP};
    RETURN NULL;
END
$$;
"""

TRIGGERS = """
CREATE TRIGGER reports_enrollment_journal_insert AFTER INSERT ON participants_enrollment
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reports_enrollment_journal_insert();
CREATE TRIGGER reports_enrollment_journal_delete AFTER DELETE ON participants_enrollment
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION reports_enrollment_journal_delete();
CREATE TRIGGER reports_enrollment_journal_update AFTER UPDATE ON participants_enrollment
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reports_enrollment_journal_update();
"""

DROP = """
DROP TRIGGER IF EXISTS reports_enrollment_journal_insert ON participants_enrollment;
DROP TRIGGER IF EXISTS reports_enrollment_journal_delete ON participants_enrollment;
DROP TRIGGER IF EXISTS reports_enrollment_journal_update ON participants_enrollment;
DROP FUNCTION IF EXISTS reports_enrollment_journal_insert();
DROP FUNCTION IF EXISTS reports_enrollment_journal_delete();
DROP FUNCTION IF EXISTS reports_enrollment_journal_update();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)
        schema_editor.execute(UPDATE_FUNCTION)
        schema_editor.execute(TRIGGERS)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0009_pending_refresh_coverage_since"),
        ("participants", "0005_enrollment_redundant_indexes_dropped"),
        ("campaigns", "0002_target_import"),
        ("districts", "0002_role_groups"),
    ]

    operations = [
        migrations.CreateModel(
            name="EnrollmentChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("campaign_id", models.BigIntegerField(verbose_name="campaign")),
                ("unit_id", models.BigIntegerField(verbose_name="unit")),
                ("scheme", models.CharField(max_length=16, verbose_name="scheme")),
                ("kind", models.CharField(max_length=8, verbose_name="kind")),
                ("enrolled_on", models.DateField(verbose_name="date recorded")),
                ("coverage_start", models.DateField(verbose_name="coverage start")),
                ("coverage_end", models.DateField(verbose_name="coverage end")),
                ("sign", models.IntegerField(verbose_name="sign")),
            ],
            options={"verbose_name": "enrollment change", "verbose_name_plural": "enrollment changes"},
        ),
        migrations.RunPython(create, drop),
    ]
