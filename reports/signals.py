"""Signals of the attainment engine, for what is derived from its snapshot (stored dashboard breakdowns)."""

from django.dispatch import Signal

# Sent inside the engine's transaction, after a run has written its snapshot rows and before it commits, so that a
# receiver's writes land (or fail) together with the snapshot. Arguments:
#   campaign_ids: list[int]  the campaigns the run rewrote;
#   unit_ids: dict[int, set[int]] | None  {campaign id: unit ids} for an incremental run, None for a full one;
#   since: dict[int, datetime.date | None] | None  per campaign, the first entry day rewritten (None: all days);
#   as_of: datetime.date | None  the as-of date the run was asked for (None: each campaign's default).
snapshot_written = Signal()
