"""factory-boy factories for the domain; tests build only what they need."""

import datetime

import factory
from django.contrib.auth.models import Group, User

from campaigns.models import Campaign, Target
from districts.models import Commune, District, Province, UserScope
from participants.models import CollectionAgent, CollectionOrganisation, Participant, Scheme


class ProvinceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Province
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"9{n:03d}")
    name = factory.Sequence(lambda n: f"Tỉnh Thử {n}")
    codename = factory.Sequence(lambda n: f"tinh_thu_{n}")


class DistrictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = District
        django_get_or_create = ("code",)

    province = factory.SubFactory(ProvinceFactory)
    code = factory.Sequence(lambda n: f"D{n:04d}")
    name = factory.Sequence(lambda n: f"Huyện Thử {n}")
    kind = District.Kind.DISTRICT


class CommuneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Commune
        django_get_or_create = ("code",)

    district = factory.SubFactory(DistrictFactory)
    code = factory.Sequence(lambda n: f"C{n:05d}")
    name = factory.Sequence(lambda n: f"Xã Thử {n}")
    kind = Commune.Kind.COMMUNE


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])
        self.save()


def make_user(role: str, *, province, unit=None, username: str) -> User:
    """A user in one role, scoped to a province and optionally one unit; password "correct-horse-battery"."""
    user = UserFactory(username=username, role=role)
    UserScope.objects.update_or_create(user=user, defaults={"province": province, "unit": unit})
    return user


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    province = factory.SubFactory(ProvinceFactory)
    name = factory.Sequence(lambda n: f"Chiến dịch {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    start_date = datetime.date(2024, 3, 14)
    end_date = datetime.date(2024, 3, 31)
    status = Campaign.Status.ACTIVE


class TargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Target

    campaign = factory.SubFactory(CampaignFactory)
    unit = factory.SubFactory(DistrictFactory, province=factory.SelfAttribute("..campaign.province"))
    scheme = Scheme.VSI
    value = 20


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CollectionOrganisation

    province = factory.SubFactory(ProvinceFactory)
    code = factory.Sequence(lambda n: f"TCDV{n:04d}")
    name = factory.Sequence(lambda n: f"Bưu điện {n}")
    kind = CollectionOrganisation.Kind.POST_OFFICE


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CollectionAgent

    organisation = factory.SubFactory(OrganisationFactory)
    code = factory.Sequence(lambda n: f"NVT{n:05d}")
    full_name = factory.Sequence(lambda n: f"Nguyễn Văn Thu {n}")


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    si_number = factory.Sequence(lambda n: f"{2400000000 + n:010d}")
    full_name = factory.Sequence(lambda n: f"Trần Thị Mai {n}")
    date_of_birth = datetime.date(1985, 6, 1)
    gender = Participant.Gender.FEMALE
