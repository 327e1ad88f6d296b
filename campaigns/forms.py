"""Forms: a campaign, its targets grid, and the target file upload."""

from __future__ import annotations

from django import forms
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.models import Campaign
from districts.scoping import visible_provinces
from participants.models import Scheme

# "new" is the address of the create page.
RESERVED_SLUGS = {"new"}


def slug_from_name(name: str, *, exclude_pk=None) -> str:
    """A unique slug from a Vietnamese name: 'Tháng vận động BHXH 2024' → 'thang-van-dong-bhxh-2024'."""
    base = slugify(name.replace("đ", "d").replace("Đ", "D"))[:70] or "chien-dich"
    if base in RESERVED_SLUGS:
        base = f"{base}-campaign"
    slug, n = base, 2
    taken = Campaign.objects.exclude(pk=exclude_pk)
    while taken.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class CampaignForm(forms.ModelForm):
    """A campaign's name, slug, window, status and measure; the province only for a superuser creating one."""

    class Meta:
        model = Campaign
        fields = ["province", "name", "slug", "start_date", "end_date", "status", "measure", "description"]
        widgets = {"start_date": DateInput(), "end_date": DateInput(), "description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"slug": gettext_lazy("Used in addresses and on the command line; made from the name if empty.")}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        # An admin works for one province: the campaign is theirs. Only a superuser picks, and only when creating;
        # moving a campaign with targets to another province would orphan them.
        if self.instance.pk or not user.is_superuser:
            del self.fields["province"]
        else:
            self.fields["province"].queryset = visible_provinces(user)
        for name, field in self.fields.items():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.setdefault("class", css)
            if name == "slug":
                field.widget.attrs["data-slug-from"] = "id_name"

    def clean_slug(self):
        slug = self.cleaned_data.get("slug")
        if not slug and self.cleaned_data.get("name"):
            slug = slug_from_name(self.cleaned_data["name"], exclude_pk=self.instance.pk)
        if slug in RESERVED_SLUGS:
            raise forms.ValidationError(_("This short name is reserved; choose another."))
        return slug

    def clean(self):
        data = super().clean()
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", _("The campaign cannot end before it starts."))
        return data


class TargetGridForm(forms.Form):
    """One number field per unit and scheme, and one per scheme for the province-level target.

    An empty field means no target (clearing one removes it)."""

    def __init__(self, *args, units, values: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.units = list(units)
        self.keys = {}
        for unit in self.units:
            for scheme in Scheme.values:
                self._add(f"t_{unit.pk}_{scheme}", (unit, scheme), values.get((unit.pk, scheme)), f"{unit.name}")
        for scheme, label in Scheme.choices:
            self._add(f"p_{scheme}", (None, scheme), values.get((None, scheme)), str(label))

    def _add(self, name, key, initial, label):
        self.fields[name] = forms.IntegerField(
            label=label,
            required=False,
            min_value=0,
            max_value=10_000_000,
            initial=initial,
            widget=forms.NumberInput(attrs={"class": "form-control form-control-sm text-end", "min": 0, "step": 1}),
        )
        self.keys[name] = key

    def field_for(self, unit_pk, scheme):
        return self[f"t_{unit_pk}_{scheme}"] if unit_pk else self[f"p_{scheme}"]

    def rows(self):
        """[(unit, [(bound field, scheme label) per scheme])] for the template."""
        return [(unit, [(self[f"t_{unit.pk}_{s}"], label) for s, label in Scheme.choices]) for unit in self.units]

    def province_fields(self):
        return [self[f"p_{s}"] for s in Scheme.values]

    def changed_values(self) -> dict:
        """{(unit or None, scheme): value or None} for the fields the admin changed."""
        return {self.keys[name]: self.cleaned_data.get(name) for name in self.changed_data}


class TargetUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Target file (XLSX or CSV)"),
        widget=forms.ClearableFileInput(attrs={"class": "form-control", "accept": ".xlsx,.csv"}),
    )
