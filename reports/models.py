"""Snapshot tables written by the attainment engine and read by the dashboards (see reports/engine.py)."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign
from districts.models import District
from participants.models import Scheme


class RecomputeRun(models.Model):
    """One run of the engine: what it covered, when it ran, how long it took, what it wrote, how it ended."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Kind(models.TextChoices):
        FULL = "full", _("Full")
        INCREMENTAL = "incremental", _("Incremental")

    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="recompute_runs",
        verbose_name=_("campaign"),
        help_text=_("Empty for a run over every campaign."),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.FULL)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    as_of = models.DateField(_("as of"), null=True, blank=True)
    queued_at = models.DateTimeField(_("queued at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_seconds = models.FloatField(_("duration (seconds)"), null=True, blank=True)
    total_rows = models.PositiveIntegerField(_("total rows written"), default=0)
    daily_rows = models.PositiveIntegerField(_("daily rows written"), default=0)
    steps_done = models.PositiveIntegerField(_("steps done"), default=0)
    steps_total = models.PositiveIntegerField(_("steps in all"), default=0)
    error = models.TextField(_("error"), blank=True)
    started_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("started by")
    )

    class Meta:
        ordering = ["-queued_at", "-id"]
        verbose_name = _("recompute run")
        verbose_name_plural = _("recompute runs")

    def __str__(self):
        return f"{self.get_kind_display()} {self.campaign or ''} {self.get_status_display()} {self.queued_at:%d/%m/%Y %H:%M}"

    @property
    def progress_pct(self):
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not self.steps_total:
            return 0
        return min(100, round(100 * self.steps_done / self.steps_total))

    @property
    def is_finished(self):
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class AttainmentTotal(models.Model):
    """Every figure of one campaign × unit × scheme as of a date; the unit is empty for the province as a whole."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="attainment_totals", verbose_name=_("campaign")
    )
    unit = models.ForeignKey(
        District,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="attainment_totals",
        verbose_name=_("unit"),
    )
    scheme = models.CharField(_("scheme"), max_length=16, choices=Scheme.choices)
    as_of = models.DateField(_("as of"))
    computed_at = models.DateTimeField(_("computed at"))
    # No index: nothing reads the rows by run, and without one an incremental refresh that moves a row in place
    # changes no indexed column, so PostgreSQL can update it on its own page (the table keeps room: migration 0012).
    # No database constraint either: every refresh sets the run of thousands of rows, and the deferred check of
    # each at commit was ~15 ms of a national refresh; the engine writes only the run it has just created, and
    # Django's collector still sets it to NULL when a run is deleted.
    run = models.ForeignKey(
        RecomputeRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    target = models.PositiveIntegerField(_("target"), default=0)
    has_target = models.BooleanField(_("has a target"), default=False)
    enrolled = models.PositiveIntegerField(_("enrolled"), default=0)
    new = models.PositiveIntegerField(_("new"), default=0)
    resumed = models.PositiveIntegerField(_("resumed"), default=0)
    # What the target is measured against: `enrolled` for a window campaign, `active` for one on the stock.
    achieved = models.PositiveIntegerField(_("achieved"), default=0)
    attained_pct = models.DecimalField(_("attained %"), max_digits=12, decimal_places=2, null=True, blank=True)
    remaining = models.PositiveIntegerField(_("remaining"), default=0)
    days_left = models.PositiveIntegerField(_("days left"), default=0)
    days_elapsed = models.PositiveIntegerField(_("days elapsed"), default=0)
    required_daily_pace = models.DecimalField(
        _("required daily pace"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    current_daily_pace = models.DecimalField(_("current daily pace"), max_digits=14, decimal_places=2, default=0)
    projected_at_end = models.DecimalField(_("projected at end"), max_digits=16, decimal_places=2, default=0)
    on_track = models.BooleanField(_("on track"), default=False)
    rank_enrolled = models.PositiveIntegerField(_("rank by enrolled"), null=True, blank=True)
    rank_attained = models.PositiveIntegerField(_("rank by attained %"), null=True, blank=True)

    # Campaigns on the stock: active participants on the date and the comparisons.
    active = models.PositiveIntegerField(_("active participants"), null=True, blank=True)
    active_prev_month_end = models.PositiveIntegerField(null=True, blank=True)
    active_prev_year_end = models.PositiveIntegerField(null=True, blank=True)
    active_same_day_last_year = models.PositiveIntegerField(null=True, blank=True)
    active_before_start = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "scheme", "rank_enrolled", "unit__code"]
        verbose_name = _("attainment figure")
        verbose_name_plural = _("attainment figures")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "unit", "scheme"],
                condition=Q(unit__isnull=False),
                name="attainment_one_per_campaign_unit_scheme",
            ),
            models.UniqueConstraint(
                fields=["campaign", "scheme"],
                condition=Q(unit__isnull=True),
                name="attainment_one_province_row_per_campaign_scheme",
            ),
        ]

    def __str__(self):
        return f"{self.campaign} – {self.unit or _('province')} – {self.scheme}: {self.achieved}/{self.target}"

    @staticmethod
    def _change(now, then):
        if now is None or then is None:
            return None
        return now - then

    @staticmethod
    def _change_pct(now, then):
        from decimal import ROUND_HALF_UP, Decimal

        if now is None or not then:
            return None
        return (Decimal(now - then) * 100 / Decimal(then)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    @property
    def change_vs_prev_month(self):
        return self._change(self.active, self.active_prev_month_end)

    @property
    def change_vs_prev_month_pct(self):
        return self._change_pct(self.active, self.active_prev_month_end)

    @property
    def change_vs_year_end(self):
        return self._change(self.active, self.active_prev_year_end)

    @property
    def change_vs_year_end_pct(self):
        return self._change_pct(self.active, self.active_prev_year_end)

    @property
    def change_vs_same_day_last_year(self):
        return self._change(self.active, self.active_same_day_last_year)

    @property
    def change_vs_same_day_last_year_pct(self):
        return self._change_pct(self.active, self.active_same_day_last_year)


class AttainmentDaily(models.Model):
    """The daily series the charts draw: new + resumed enrollments per campaign × unit × scheme × day, for the window
    campaigns only (an annual plan on the stock draws no series; its growth is counted from the enrollments)."""

    # No database foreign keys (db_constraint=False): the engine writes these rows itself, from enrollments whose
    # unit and campaign exist, inside its locked transaction; PostgreSQL's deferred checks of half a million rows
    # cost seconds at commit. Django's collector still cascades the deletes of a campaign or unit.
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="attainment_days",
        verbose_name=_("campaign"),
        db_constraint=False,
        # The unique constraint (campaign, unit, scheme, day) serves every lookup by campaign: one index less to
        # maintain for each of the half million rows a full run writes.
        db_index=False,
    )
    # No index of its own either: every read is by campaign (and unit), which the unique constraint serves; a full
    # run writes this table fresh and builds that one index once, after the rows (see engine._daily_swap).
    unit = models.ForeignKey(
        District,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("unit"),
        db_constraint=False,
        db_index=False,
    )
    scheme = models.CharField(_("scheme"), max_length=16, choices=Scheme.choices)
    day = models.DateField(_("day"))
    count = models.PositiveIntegerField(_("enrolled that day"))
    # Of which new (the rest resumed): lets a full run sum its totals from these rows instead of rescanning.
    new = models.PositiveIntegerField(_("new that day"), default=0)
    # No stored running total: the charts sum `count` (selectors.cumulative_series), and a stored one made a late
    # entry rewrite every later day of its unit's series (most of an annual plan) instead of its own day's row.

    class Meta:
        ordering = ["campaign", "unit", "scheme", "day"]
        verbose_name = _("daily attainment")
        verbose_name_plural = _("daily attainment")
        # The one index: unique per campaign, unit, scheme and day, with the count beside the key, so that the
        # dashboard's cumulative chart (selectors.cumulative_series: a campaign's days summed over its units) is
        # answered from the index alone once the table is vacuumed (the full run vacuums the table it swaps in).
        # A second index in (campaign, scheme, day) order saved ~0.3 ms a first view but cost every full run
        # ~0.3 s to build and every incremental update one more index entry per day row.
        # On PostgreSQL the constraint's index carries the count (migration 0013 and engine._daily_build; declared
        # here without INCLUDE, which SQLite cannot honour and would otherwise skip the uniqueness altogether).
        constraints = [
            models.UniqueConstraint(fields=["campaign", "unit", "scheme", "day"], name="attainment_daily_unique"),
        ]

    def __str__(self):
        return f"{self.campaign} – {self.unit} – {self.scheme} {self.day}: {self.count}"


class PendingRefresh(models.Model):
    """A unit whose enrollments changed after its campaign's snapshot was computed.

    Written by the after-commit receiver into the database (not Redis), so it survives a broker outage; the
    incremental task and the nightly run clear it, and the dashboard warns while one is waiting.
    """

    # No database constraints: a mark is upserted for every touched unit after each entry's commit (thousands after
    # an import), and their deferred checks at commit were most of that step's time (~15 ms for a national day);
    # marks are written from units and campaigns that exist, and Django's collector still deletes them with those.
    # No index of their own either: the unique (campaign, unit) serves every lookup by campaign, and units are never
    # deleted (a delete's collector would read this small table whole); two index entries fewer for every mark.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    unit = models.ForeignKey(District, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False)
    marked_at = models.DateTimeField()
    # The earliest entry day touched since the last refresh: the unit's daily series is rewritten from that day on
    # (the days before it are unchanged). Empty: rewrite the whole series.
    since = models.DateField(null=True, blank=True)
    # True while every entry day touched since the last refresh is listed in PendingRefreshDay: the refresh then
    # recounts only those days of the unit's series; False: every day from `since` on.
    days_only = models.BooleanField(default=False)
    # The earliest coverage start touched since the last refresh: stock counts on comparison days before it cannot
    # have moved. Empty: unknown, every comparison day is recounted.
    coverage_since = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = _("pending refresh")
        verbose_name_plural = _("pending refreshes")
        constraints = [models.UniqueConstraint(fields=["campaign", "unit"], name="pending_refresh_unique")]

    def __str__(self):
        return f"{self.campaign} – {self.unit} since {self.marked_at}"


class PendingRefreshDay(models.Model):
    """One entry day of a pending unit whose daily counts may have moved (see PendingRefresh.days_only); removed
    with the unit's mark by the refresh that rewrote it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    unit = models.ForeignKey(District, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()

    class Meta:
        verbose_name = _("pending refresh day")
        verbose_name_plural = _("pending refresh days")
        constraints = [models.UniqueConstraint(fields=["campaign", "unit", "day"], name="pending_refresh_day_unique")]

    def __str__(self):
        return f"{self.campaign} – {self.unit} on {self.day}"


class AttainmentBreakdown(models.Model):
    """Who responds, stored: new + resumed enrollments per campaign × unit × scheme × dimension × bucket, as of the
    snapshot's date (reports/breakdowns.py builds them from the engine's snapshot_written signal).

    Dimensions: age band at the campaign's start, gender, occupation and kind. One marker row per campaign (no unit,
    dimension "built") says for which as-of date the campaign's rows are complete.
    """

    class Dimension(models.TextChoices):
        AGE = "age", _("Age band")
        GENDER = "gender", _("Gender")
        OCCUPATION = "occupation", _("Occupation")
        KIND = "kind", _("Kind")
        BUILT = "built", _("Built")

    # No database foreign keys, like AttainmentDaily: written by one INSERT … SELECT inside the engine's
    # transaction from units and campaigns that exist; Django's collector still cascades the deletes.
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("campaign"),
        db_constraint=False,
        db_index=False,  # the unique constraint below leads with the campaign
    )
    unit = models.ForeignKey(
        District,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("unit"),
        db_constraint=False,
        db_index=False,
    )
    scheme = models.CharField(_("scheme"), max_length=16, blank=True)
    dimension = models.CharField(_("dimension"), max_length=12, choices=Dimension.choices)
    bucket = models.CharField(_("group"), max_length=16, blank=True)
    count = models.PositiveIntegerField(_("enrolled"))
    as_of = models.DateField(_("as of"))

    class Meta:
        verbose_name = _("attainment breakdown")
        verbose_name_plural = _("attainment breakdowns")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "as_of", "unit", "dimension", "bucket", "scheme"],
                name="attainment_breakdown_unique",
            ),
        ]
        indexes = [
            # The one marker row per campaign: every refresh that defers the rebuild marks its campaigns "pending"
            # (an UPDATE by campaign and dimension), which otherwise reads the unique index's ~50,000 entries.
            models.Index(fields=["campaign"], name="attainment_breakdown_built", condition=Q(dimension="built")),
        ]

    def __str__(self):
        return f"{self.campaign_id} – {self.unit_id} – {self.scheme} {self.dimension}={self.bucket}: {self.count}"


class EnrollmentChange(models.Model):
    """The journal of enrollment changes not yet in a campaign's snapshot (PostgreSQL only; empty on SQLite).

    Written by triggers on the enrollment table (migration 0010), in the writer's own transaction, whatever wrote
    the row (the entry form, an import, the admin, plain SQL): one row per changed enrollment and campaign whose
    figures it can move (its unit's province, and its entry day inside the window, or any coverage starting by the
    end of a campaign on the stock), +1 for the row as it is now and -1 for the row as it was, summed per statement. A refresh takes a
    campaign's rows out with DELETE … RETURNING and adds them to the stored figures, so every change is counted
    exactly once; a full rebuild of the campaign deletes them in the same snapshot as its count (engine).
    """

    campaign_id = models.BigIntegerField(_("campaign"))
    unit_id = models.BigIntegerField(_("unit"))
    scheme = models.CharField(_("scheme"), max_length=16)
    kind = models.CharField(_("kind"), max_length=8)
    enrolled_on = models.DateField(_("date recorded"))
    coverage_start = models.DateField(_("coverage start"))
    coverage_end = models.DateField(_("coverage end"))
    # +n: n enrollments of these values more; -n: n fewer (a statement's rows are summed).
    sign = models.IntegerField(_("sign"))

    class Meta:
        verbose_name = _("enrollment change")
        verbose_name_plural = _("enrollment changes")

    def __str__(self):
        return f"{self.campaign_id} – {self.unit_id} {self.scheme} {self.enrolled_on}: {self.sign:+d}"
