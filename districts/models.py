"""Administrative units (provinces, district-level units, communes) and the scope of each user."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class UnitQuerySet(models.QuerySet):
    def existing_on(self, day):
        """Units that existed on `day`: created on or before it and not yet ceased."""
        return self.filter(Q(valid_from__isnull=True) | Q(valid_from__lte=day)).filter(
            Q(ceased_on__isnull=True) | Q(ceased_on__gt=day)
        )

    def current(self):
        return self.filter(ceased_on__isnull=True)


class Province(models.Model):
    """A province or centrally governed city, with its official (GSO) code as of 2023–2024."""

    class Kind(models.TextChoices):
        PROVINCE = "province", _("Province")
        CITY = "city", _("Centrally governed city")

    code = models.CharField(_("code"), max_length=8, unique=True)
    name = models.CharField(_("name"), max_length=100)
    codename = models.SlugField(_("code name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.PROVINCE)
    valid_from = models.DateField(_("existed from"), null=True, blank=True)
    ceased_on = models.DateField(_("ceased on"), null=True, blank=True)

    objects = UnitQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        verbose_name = _("province")
        verbose_name_plural = _("provinces")
        constraints = [
            models.CheckConstraint(
                condition=Q(ceased_on__isnull=True)
                | Q(valid_from__isnull=True)
                | Q(ceased_on__gt=models.F("valid_from")),
                name="province_ceases_after_it_starts",
            )
        ]

    def __str__(self):
        return self.name


class District(models.Model):
    """A district-level unit whose Social Insurance office enrols people; the provincial office is one too."""

    class Kind(models.TextChoices):
        DISTRICT = "district", _("District")
        TOWN = "town", _("Town")
        PROVINCIAL_CITY = "provincial_city", _("Provincial city")
        URBAN_DISTRICT = "urban_district", _("Urban district")
        PROVINCIAL_OFFICE = "provincial_office", _("Provincial office")
        GRASSROOTS_OFFICE = "grassroots_office", _("Grassroots SI office")

    province = models.ForeignKey(Province, on_delete=models.PROTECT, related_name="units", verbose_name=_("province"))
    code = models.CharField(_("code"), max_length=12, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    population = models.PositiveIntegerField(_("population"), null=True, blank=True)
    labour_force = models.PositiveIntegerField(_("labour force"), null=True, blank=True)
    valid_from = models.DateField(_("existed from"), null=True, blank=True)
    ceased_on = models.DateField(_("ceased on"), null=True, blank=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_units",
        verbose_name=_("merged into"),
    )

    objects = UnitQuerySet.as_manager()

    class Meta:
        ordering = ["province__code", "code"]
        verbose_name = _("district-level unit")
        verbose_name_plural = _("district-level units")
        constraints = [
            models.CheckConstraint(
                condition=Q(ceased_on__isnull=True)
                | Q(valid_from__isnull=True)
                | Q(ceased_on__gt=models.F("valid_from")),
                name="district_ceases_after_it_starts",
            ),
            models.CheckConstraint(
                condition=Q(population__isnull=True)
                | Q(labour_force__isnull=True)
                | Q(labour_force__lte=models.F("population")),
                name="district_labour_force_within_population",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_provincial_office(self):
        return self.kind == self.Kind.PROVINCIAL_OFFICE

    def serves(self, commune) -> bool:
        """A district serves its own communes; the provincial office, which has none, every commune of its province."""
        if self.is_provincial_office:
            return commune.district.province_id == self.province_id
        return commune.district_id == self.pk

    def served_communes(self):
        if self.is_provincial_office:
            return Commune.objects.filter(district__province_id=self.province_id)
        return Commune.objects.filter(district_id=self.pk)


class Commune(models.Model):
    """A commune, ward or township, inside one district-level unit."""

    class Kind(models.TextChoices):
        COMMUNE = "commune", _("Commune")
        WARD = "ward", _("Ward")
        TOWNSHIP = "township", _("Township")

    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="communes", verbose_name=_("unit"))
    code = models.CharField(_("code"), max_length=12, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    valid_from = models.DateField(_("existed from"), null=True, blank=True)
    ceased_on = models.DateField(_("ceased on"), null=True, blank=True)

    objects = UnitQuerySet.as_manager()

    class Meta:
        ordering = ["district__code", "code"]
        verbose_name = _("commune")
        verbose_name_plural = _("communes")

    def __str__(self):
        return self.name


class UserScope(models.Model):
    """What one user may see: a province, and for staff or a district manager optionally one unit.

    The role itself is the user's group (staff, manager, admin); superusers see everything.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scope", verbose_name=_("user")
    )
    province = models.ForeignKey(Province, on_delete=models.PROTECT, verbose_name=_("province"))
    unit = models.ForeignKey(
        District,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("unit"),
        help_text=_("Leave empty for someone who works for the whole province."),
    )

    class Meta:
        verbose_name = _("user scope")
        verbose_name_plural = _("user scopes")

    def __str__(self):
        return f"{self.user} – {self.unit or self.province}"

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.unit_id and self.province_id and self.unit.province_id != self.province_id:
            raise ValidationError({"unit": _("This unit belongs to another province.")})
