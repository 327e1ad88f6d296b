"""The official administrative units of 2023–2024, loaded from the committed data file by `load_units`."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.db.models import Count

from districts.models import Commune, District, Province

pytestmark = pytest.mark.django_db


def load(*args):
    out = io.StringIO()
    call_command("load_units", *args, stdout=out)
    return out.getvalue()


def test_it_loads_63_provinces_705_district_level_units_with_63_offices_and_10598_communes():
    load()
    assert Province.objects.count() == 63
    assert District.objects.exclude(kind=District.Kind.PROVINCIAL_OFFICE).count() == 705
    assert District.objects.filter(kind=District.Kind.PROVINCIAL_OFFICE).count() == 63
    assert Commune.objects.count() == 10598
    # Every province has exactly one provincial office, whose code cannot clash with a numeric GSO code.
    offices = District.objects.filter(kind=District.Kind.PROVINCIAL_OFFICE)
    assert set(offices.values_list("province__code", flat=True)) == set(Province.objects.values_list("code", flat=True))
    assert all(code.startswith("VP") for code in offices.values_list("code", flat=True))
    assert all(code.isdigit() for code in District.objects.exclude(pk__in=offices).values_list("code", flat=True))


def test_bac_giang_is_province_24_with_hiep_hoa_223_yen_dung_221_and_its_office():
    load()
    bac_giang = Province.objects.get(code="24")
    assert bac_giang.name == "Tỉnh Bắc Giang"
    assert bac_giang.kind == Province.Kind.PROVINCE
    units = dict(District.objects.filter(province=bac_giang).values_list("code", "name"))
    assert units["223"] == "Huyện Hiệp Hòa"
    assert units["221"] == "Huyện Yên Dũng"
    assert units["213"] == "Thành phố Bắc Giang"
    assert units["VP24"] == "Văn phòng BHXH tỉnh Bắc Giang"
    assert len(units) == 11  # ten district-level units and the provincial office
    assert Commune.objects.filter(district__code="223").count() > 20


def test_yen_dung_ceased_at_the_end_of_2024_merged_into_bac_giang_city_and_still_exists_in_2024():
    load()
    yen_dung = District.objects.get(code="221")
    assert yen_dung.merged_into.code == "213"
    assert yen_dung.ceased_on == datetime.date(2024, 11, 1)
    existing_2024 = District.objects.existing_on(datetime.date(2024, 5, 31))
    existing_2025 = District.objects.existing_on(datetime.date(2025, 1, 1))
    assert existing_2024.filter(code="221").exists()
    assert not existing_2025.filter(code="221").exists()
    assert existing_2025.filter(code="213").exists()
    # The merges of late 2024: a handful of district-level units ceased, each merged into a unit of its province.
    ceased = District.objects.filter(ceased_on__isnull=False)
    assert 5 <= ceased.count() <= 20
    assert not ceased.filter(merged_into__isnull=True).exists()
    for unit in ceased.select_related("merged_into"):
        assert unit.merged_into.province_id == unit.province_id
        assert unit.merged_into.ceased_on is None
    assert not District.objects.filter(ceased_on__isnull=True, merged_into__isnull=False).exists()


def test_kinds_come_from_the_official_name_prefixes():
    load()
    assert dict(Province.objects.values_list("kind").annotate(n=Count("id"))) == {"city": 5, "province": 58}
    assert Province.objects.get(code="01").kind == Province.Kind.CITY  # Thành phố Hà Nội
    units = dict(District.objects.values_list("kind").annotate(n=Count("id")))
    assert units == {
        "district": 524,
        "provincial_city": 83,
        "town": 52,
        "urban_district": 46,
        "provincial_office": 63,
    }
    assert District.objects.get(code="001").kind == District.Kind.URBAN_DISTRICT  # Quận Ba Đình
    assert District.objects.get(code="213").kind == District.Kind.PROVINCIAL_CITY
    communes = dict(Commune.objects.values_list("kind").annotate(n=Count("id")))
    assert communes == {"commune": 8207, "ward": 1771, "township": 620}
    for commune in Commune.objects.filter(district__code="223"):
        prefix = {"commune": "Xã ", "ward": "Phường ", "township": "Thị trấn "}[commune.kind]
        assert commune.name.startswith(prefix)


def test_running_it_again_changes_nothing_restores_names_and_never_deletes_a_unit():
    load()
    before = (Province.objects.count(), District.objects.count(), Commune.objects.count())
    hiep_hoa = District.objects.get(code="223")
    District.objects.filter(pk=hiep_hoa.pk).update(name="Huyện Hiệp Hoà (sửa tay)")
    extra = District.objects.create(
        province=hiep_hoa.province, code="BHXH-CS1", name="BHXH cơ sở Hiệp Hòa", kind=District.Kind.GRASSROOTS_OFFICE
    )

    output = load()

    assert "units: 0 created, 1 updated" in output
    assert "communes: 0 created, 0 updated" in output
    hiep_hoa.refresh_from_db()
    assert hiep_hoa.name == "Huyện Hiệp Hòa"
    assert hiep_hoa.pk == District.objects.get(code="223").pk
    assert District.objects.filter(pk=extra.pk).exists()
    assert (Province.objects.count(), District.objects.count() - 1, Commune.objects.count()) == before

    assert "units: 0 created, 0 updated" in load()


def test_if_empty_leaves_loaded_units_alone_and_loads_an_empty_database():
    assert not Province.objects.exists()
    load("--if-empty")
    assert Commune.objects.count() == 10598
    District.objects.filter(code="223").update(name="Tên đã sửa")
    assert load("--if-empty") == ""
    assert District.objects.get(code="223").name == "Tên đã sửa"
