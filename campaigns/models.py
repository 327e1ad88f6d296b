"""Campaigns, their windows, and their targets per unit and scheme."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from districts.models import District, Province
from participants.models import Scheme


class Campaign(models.Model):
    """An enrollment campaign of one province over a date window."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")

    class Measure(models.TextChoices):
        WINDOW = "window", _("New and resumed enrollments in the window")
        STOCK = "stock", _("Active participants at the end (annual plan)")

    province = models.ForeignKey(
        Province, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("province")
    )
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("short name (slug)"), max_length=80, unique=True)
    start_date = models.DateField(_("start date"))
    end_date = models.DateField(_("end date"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.DRAFT)
    measure = models.CharField(_("what it counts"), max_length=8, choices=Measure.choices, default=Measure.WINDOW)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-start_date", "name"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")), name="campaign_ends_on_or_after_start"
            ),
            models.CheckConstraint(condition=Q(status__in=["draft", "active", "closed"]), name="campaign_status_valid"),
            models.CheckConstraint(condition=Q(measure__in=["window", "stock"]), name="campaign_measure_valid"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("reports:campaign_dashboard", kwargs={"slug": self.slug})

    @property
    def days_in_window(self):
        return (self.end_date - self.start_date).days + 1

    @property
    def is_stock(self):
        return self.measure == self.Measure.STOCK


class Target(models.Model):
    """A campaign's target for one scheme: for one unit, or (unit empty) for the province as a whole.

    The province-level target is set on its own and need not equal the sum of the units' targets.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="targets", verbose_name=_("campaign"))
    unit = models.ForeignKey(
        District,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="targets",
        verbose_name=_("unit"),
        help_text=_("Empty for the province-level target."),
    )
    scheme = models.CharField(_("scheme"), max_length=16, choices=Scheme.choices)
    value = models.PositiveIntegerField(_("target"))

    history = HistoricalRecords()

    class Meta:
        ordering = ["campaign", "unit__code", "scheme"]
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "unit", "scheme"],
                condition=Q(unit__isnull=False),
                name="target_one_per_campaign_unit_scheme",
            ),
            models.UniqueConstraint(
                fields=["campaign", "scheme"],
                condition=Q(unit__isnull=True),
                name="target_one_province_level_per_campaign_scheme",
            ),
            models.CheckConstraint(condition=Q(value__gte=0), name="target_not_negative"),
            models.CheckConstraint(condition=Q(scheme__in=Scheme.values), name="target_scheme_valid"),
        ]

    def __str__(self):
        return f"{self.campaign} – {self.unit or _('province')} – {self.get_scheme_display()}: {self.value}"


class TargetImport(models.Model):
    """An uploaded target spreadsheet: its parsed cells are kept between the preview and the confirmation.

    Only the uploader can confirm it; once applied it stays as the record of who imported which file and when.
    """

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="target_imports", verbose_name=_("campaign")
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("uploaded by")
    )
    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("content hash (SHA-256)"), max_length=64)
    table = models.JSONField(_("parsed cells"))
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    applied_at = models.DateTimeField(_("imported at"), null=True, blank=True)
    summary = models.JSONField(_("result"), default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("target import")
        verbose_name_plural = _("target imports")

    def __str__(self):
        return f"{self.campaign} – {self.file_name}"
