"""On PostgreSQL, the refusal of overlapping coverage becomes one exclusion constraint per scheme, each on
(person, coverage range) only: the same guarantee, since enrollment_scheme_valid allows exactly these two schemes.

The single constraint of 0002 kept the scheme, a text column, in every GiST entry, and btree_gist compares text
through the collation at every level of every insert. Measured on a copy of 2,000,000 enrollments (bench data), 200,000
new rows: 4.77 s of backend CPU with the single constraint against 3.30 s with the two partial ones, and the index
shrinks from 177 MB to 134 MB. At 10 million enrollments the single index is 875 MB and maintaining it was the largest
cost of a list import's INSERT (about a quarter of its CPU).

The new constraints are made before the old one is dropped, in one transaction: there is no moment without the
guarantee. A new scheme needs its own constraint (tests/participants/test_bulk_write_order.py checks that every scheme
has one).
"""

from django.db import migrations

SCHEMES = ("vsi", "hi_family")  # as enrollment_scheme_valid allows them when this migration was written


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for scheme in SCHEMES:
        schema_editor.execute(
            f"ALTER TABLE participants_enrollment ADD CONSTRAINT enrollment_no_overlapping_coverage_{scheme} "
            "EXCLUDE USING gist (participant_id WITH =, daterange(coverage_start, coverage_end, '[)') WITH &&) "
            f"WHERE (scheme = '{scheme}')"
        )
    schema_editor.execute(
        "ALTER TABLE participants_enrollment DROP CONSTRAINT IF EXISTS enrollment_no_overlapping_coverage"
    )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE participants_enrollment ADD CONSTRAINT enrollment_no_overlapping_coverage "
        "EXCLUDE USING gist (participant_id WITH =, scheme WITH =, daterange(coverage_start, coverage_end, '[)') WITH &&)"
    )
    for scheme in SCHEMES:
        schema_editor.execute(
            f"ALTER TABLE participants_enrollment DROP CONSTRAINT IF EXISTS enrollment_no_overlapping_coverage_{scheme}"
        )


class Migration(migrations.Migration):
    dependencies = [("participants", "0006_history_indexes_only_read_ones")]
    operations = [migrations.RunPython(forward, backward)]
