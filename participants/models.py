"""People in the two voluntary schemes, their enrollments, and the organisations that collect their payments."""

import datetime
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from districts.models import Commune, District, Province


class Scheme(models.TextChoices):
    VSI = "vsi", _("Voluntary social insurance")
    HI_FAMILY = "hi_family", _("Family health insurance")


class EnrollmentKind(models.TextChoices):
    NEW = "new", _("New")
    RESUMED = "resumed", _("Resumed")
    RENEWAL = "renewal", _("Renewal")


# The kinds a campaign counts as growth (DESIGN: renewals do not count).
GROWTH_KINDS = (EnrollmentKind.NEW, EnrollmentKind.RESUMED)

# Months a payment may cover: VSI monthly, quarterly, 6 or 12 months, or whole years in advance up to 5;
# family health insurance cards run for 12 months.
VSI_MONTHS = (1, 3, 6, 12, 24, 36, 48, 60)
HI_FAMILY_MONTHS = (12,)
ALLOWED_MONTHS = {Scheme.VSI: VSI_MONTHS, Scheme.HI_FAMILY: HI_FAMILY_MONTHS}


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day `months` later, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    import calendar

    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class CollectionOrganisation(models.Model):
    """A collection service organisation (post office, cooperative, commune service point) under contract."""

    class Kind(models.TextChoices):
        POST_OFFICE = "post_office", _("Post office")
        COOPERATIVE = "cooperative", _("Cooperative")
        COMMUNE_POINT = "commune_point", _("Commune service point")
        OTHER = "other", _("Other")

    province = models.ForeignKey(
        Province, on_delete=models.PROTECT, related_name="collection_organisations", verbose_name=_("province")
    )
    unit = models.ForeignKey(
        District,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="collection_organisations",
        verbose_name=_("unit"),
    )
    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.OTHER)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("collection organisation")
        verbose_name_plural = _("collection organisations")

    def __str__(self):
        return self.name


class CollectionAgent(models.Model):
    """A collection agent (nhân viên thu) working for one collection organisation."""

    organisation = models.ForeignKey(
        CollectionOrganisation,
        on_delete=models.PROTECT,
        related_name="agents",
        verbose_name=_("collection organisation"),
    )
    code = models.CharField(_("code"), max_length=32, unique=True)
    full_name = models.CharField(_("full name"), max_length=120)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("collection agent")
        verbose_name_plural = _("collection agents")

    def __str__(self):
        return f"{self.full_name} ({self.code})"


class Participant(models.Model):
    """A person, identified for life by a 10-digit social insurance number."""

    class Gender(models.TextChoices):
        MALE = "male", _("Male")
        FEMALE = "female", _("Female")

    class Occupation(models.TextChoices):
        FARMER = "farmer", _("Farmer")
        TRADER = "trader", _("Small trader")
        CRAFT = "craft", _("Craft or small workshop")
        FREELANCE = "freelance", _("Freelance worker")
        DRIVER = "driver", _("Driver or delivery")
        HOMEMAKER = "homemaker", _("Homemaker")
        STUDENT = "student", _("Student")
        OTHER = "other", _("Other")

    class Income(models.TextChoices):
        UNDER_3M = "lt3", _("Under 3 million ₫")
        FROM_3_TO_6M = "3to6", _("3–6 million ₫")
        FROM_6_TO_10M = "6to10", _("6–10 million ₫")
        OVER_10M = "gt10", _("Over 10 million ₫")
        UNKNOWN = "unknown", _("Unknown")

    si_number = models.CharField(_("social insurance number"), max_length=10, unique=True)
    full_name = models.CharField(_("full name"), max_length=120)
    date_of_birth = models.DateField(_("date of birth"))
    gender = models.CharField(_("gender"), max_length=8, choices=Gender.choices)
    commune = models.ForeignKey(
        Commune, on_delete=models.PROTECT, null=True, blank=True, related_name="participants", verbose_name=_("commune")
    )
    occupation = models.CharField(
        _("occupation group"), max_length=16, choices=Occupation.choices, default=Occupation.OTHER
    )
    income_bracket = models.CharField(_("income bracket"), max_length=8, choices=Income.choices, default=Income.UNKNOWN)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    # A history record is only ever read by its person's id (the record's page, the admin): the indexes on the SI
    # number (twice) and the commune were written for every new person and read by nothing.
    history = HistoricalRecords(no_db_index=["si_number", "commune"])

    class Meta:
        ordering = ["si_number"]
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        constraints = [
            models.CheckConstraint(
                condition=Q(si_number__regex=r"^[0-9]{10}$"), name="participant_si_number_10_digits"
            ),
        ]

    def __str__(self):
        return f"{self.full_name} ({self.si_number})"


class Enrollment(models.Model):
    """One payment that brings a participant into (or keeps them in) a scheme for a coverage period.

    Its kind (new, resumed, renewal) is derived from the participant's earlier coverage in the same scheme by the
    service that records it, never typed by staff.
    """

    # participant, unit and commune have no index of their own: each leads a composite one (the unique
    # person/scheme/start, unit/scheme/day/kind, commune/day), and every index costs every insert.
    participant = models.ForeignKey(
        Participant,
        on_delete=models.PROTECT,
        related_name="enrollments",
        verbose_name=_("participant"),
        db_index=False,
    )
    scheme = models.CharField(_("scheme"), max_length=16, choices=Scheme.choices)
    kind = models.CharField(_("kind"), max_length=8, choices=EnrollmentKind.choices)
    enrolled_on = models.DateField(_("date recorded"))
    coverage_start = models.DateField(_("coverage start"))
    coverage_end = models.DateField(_("coverage end"), help_text=_("First day no longer covered."))
    months = models.PositiveSmallIntegerField(_("months paid"))
    unit = models.ForeignKey(
        District, on_delete=models.PROTECT, related_name="enrollments", verbose_name=_("unit"), db_index=False
    )
    commune = models.ForeignKey(
        Commune, on_delete=models.PROTECT, related_name="enrollments", verbose_name=_("commune"), db_index=False
    )
    organisation = models.ForeignKey(
        CollectionOrganisation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="enrollments",
        verbose_name=_("collection organisation"),
    )
    agent = models.ForeignKey(
        CollectionAgent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="enrollments",
        verbose_name=_("collection agent"),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # History records are read by the enrollment's id only (enrollment_history, the admin); history_user keeps its
    # index for the SET NULL when a user is deleted. The indexes simple-history copies from every foreign key were
    # each written for every saved row (six per row, six million per list import) and read by nothing.
    history = HistoricalRecords(no_db_index=["participant", "unit", "commune", "organisation", "agent", "recorded_by"])

    class Meta:
        ordering = ["-enrolled_on", "-id"]
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        constraints = [
            models.CheckConstraint(condition=Q(months__gt=0) & Q(months__lte=60), name="enrollment_months_1_to_60"),
            models.CheckConstraint(
                condition=Q(coverage_end__gt=models.F("coverage_start")), name="enrollment_coverage_end_after_start"
            ),
            models.CheckConstraint(condition=Q(scheme__in=Scheme.values), name="enrollment_scheme_valid"),
            models.CheckConstraint(condition=Q(kind__in=EnrollmentKind.values), name="enrollment_kind_valid"),
            models.UniqueConstraint(
                fields=["participant", "scheme", "coverage_start"], name="enrollment_one_start_per_person_scheme"
            ),
        ]
        indexes = [
            # The attainment engine's GROUP BY reads only this index (covering): unit, scheme, day, kind.
            models.Index(fields=["unit", "scheme", "enrolled_on", "kind"], name="enrollment_unit_scheme_day"),
            models.Index(fields=["commune", "enrolled_on"], name="enrollment_commune_day"),
        ]

    def __str__(self):
        return f"{self.participant} – {self.get_scheme_display()} {self.coverage_start:%d/%m/%Y}"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("participants:enrollment_detail", args=[self.pk])

    @property
    def coverage_last_day(self):
        """The last covered day (coverage_end is the first uncovered one)."""
        return self.coverage_end - datetime.timedelta(days=1)

    @property
    def counts_as_growth(self):
        return self.kind in (EnrollmentKind.NEW, EnrollmentKind.RESUMED)


class EnrollmentUpload(models.Model):
    """A list of enrollments uploaded for preview and confirmation, kept in the database for its uploader only.

    The file's bytes live here (bounded by MAX_UPLOAD_BYTES) rather than on disk, so the preview and the confirm
    step read exactly what was checked, and no path a user could name is ever opened.
    """

    class Status(models.TextChoices):
        CHECKING = "checking", _("Being checked")
        READY = "ready", _("Ready to confirm")
        INVALID = "invalid", _("Has errors")
        IMPORTING = "importing", _("Being saved")
        DONE = "done", _("Saved")
        FAILED = "failed", _("Not saved")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("uploaded by")
    )
    original_name = models.CharField(_("file name"), max_length=255)
    size = models.PositiveIntegerField(_("size in bytes"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    content = models.BinaryField(_("content"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CHECKING)
    report = models.JSONField(_("check report"), default=dict, blank=True)
    task_id = models.CharField(_("task id"), max_length=64, blank=True)
    created_count = models.PositiveIntegerField(_("enrollments created"), default=0)
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("saved at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("enrollment upload")
        verbose_name_plural = _("enrollment uploads")

    def __str__(self):
        return self.original_name
