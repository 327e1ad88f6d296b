"""Deterministic demo data for Bắc Giang (province 24): campaigns shaped like the news reports, targets, collection
organisations and agents, a few thousand synthetic participants with realistic histories, and one user per role.

Everything random comes from one `random.Random(seed)` consumed in a fixed order, so the same seed on the same day
gives the same rows. Enrollments are written in bulk, but each row is checked by the same
`validate_enrollment_fields` and its kind derived by the same `derive_kind` over the person's earlier coverage as
`participants.services.enrollment_record` does; histories are built so that coverage never overlaps.
"""

from __future__ import annotations

import datetime
import hashlib
import heapq
import math
import random
from dataclasses import dataclass, field

from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.test.utils import override_settings
from django.utils import timezone

from campaigns.models import Campaign, Target
from campaigns.services import target_set
from districts.models import Commune, District, Province, UserScope
from districts.scoping import ROLE_ADMIN, ROLE_MANAGER, ROLE_STAFF, ROLES
from participants.models import (
    CollectionAgent,
    CollectionOrganisation,
    Enrollment,
    Participant,
    Scheme,
    add_months,
)
from participants.services import derive_kind, validate_enrollment_fields

PROVINCE_CODE = "24"
HISTORY_START = datetime.date(2021, 1, 1)
HISTORY_REASON = "seed_demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    unit_code: str | None  # None: the whole province
    password: str
    full_name: str


# Demo accounts only: the passwords are printed by `demo_logins` and documented in the README; never real secrets.
DEMO_USERS = (
    DemoUser("canbo", ROLE_STAFF, "223", "canbo-demo-2024", "Nguyễn Thị Hoa"),
    DemoUser("canbo_tinh", ROLE_STAFF, "VP24", "canbotinh-demo-2024", "Trần Văn Nam"),
    DemoUser("lanhdao", ROLE_MANAGER, None, "lanhdao-demo-2024", "Lê Minh Đức"),
    DemoUser("quantri", ROLE_ADMIN, None, "quantri-demo-2024", "Phạm Thu Trang"),
)

# Relative size of each unit (roughly its population in thousands); the provincial office enrols few people.
UNIT_WEIGHTS = {
    "213": 175,
    "215": 100,
    "216": 170,
    "217": 215,
    "218": 220,
    "219": 230,
    "220": 75,
    "221": 140,
    "222": 190,
    "223": 250,
    "VP24": 25,
}

SURNAMES = (
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Hoàng", 5),
    ("Vũ", 4),
    ("Phan", 3),
    ("Đỗ", 3),
    ("Bùi", 3),
    ("Đặng", 2),
    ("Ngô", 2),
    ("Dương", 2),
    ("Đào", 2),
    ("Lương", 1),
    ("Thân", 1),
    ("Giáp", 1),
    ("Hà", 1),
)
MIDDLE = {
    "male": ("Văn", "Văn", "Văn", "Đức", "Minh", "Quang", "Hữu", "Công", "Xuân", "Ngọc"),
    "female": ("Thị", "Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Minh", "Hồng", "Kim"),
}
GIVEN = {
    "male": (
        "An",
        "Bình",
        "Cường",
        "Dũng",
        "Đạt",
        "Giang",
        "Hải",
        "Hiếu",
        "Hoàng",
        "Hùng",
        "Huy",
        "Khánh",
        "Long",
        "Mạnh",
        "Nam",
        "Nghĩa",
        "Phong",
        "Phúc",
        "Quân",
        "Sơn",
        "Tài",
        "Thắng",
        "Thành",
        "Toàn",
        "Trung",
        "Tuấn",
        "Việt",
        "Vinh",
    ),  # fmt: skip
    "female": (
        "Anh",
        "Chi",
        "Dung",
        "Duyên",
        "Giang",
        "Hà",
        "Hạnh",
        "Hằng",
        "Hiền",
        "Hoa",
        "Huệ",
        "Hương",
        "Lan",
        "Liên",
        "Linh",
        "Loan",
        "Mai",
        "Ngân",
        "Nhung",
        "Oanh",
        "Phương",
        "Quyên",
        "Thảo",
        "Thu",
        "Thủy",
        "Trang",
        "Tuyết",
        "Vân",
        "Yến",
    ),  # fmt: skip
}
OCCUPATIONS = (
    (Participant.Occupation.FARMER, 40),
    (Participant.Occupation.TRADER, 15),
    (Participant.Occupation.CRAFT, 12),
    (Participant.Occupation.FREELANCE, 12),
    (Participant.Occupation.DRIVER, 6),
    (Participant.Occupation.HOMEMAKER, 10),
    (Participant.Occupation.OTHER, 5),
)
INCOMES = (
    (Participant.Income.UNDER_3M, 30),
    (Participant.Income.FROM_3_TO_6M, 40),
    (Participant.Income.FROM_6_TO_10M, 18),
    (Participant.Income.OVER_10M, 5),
    (Participant.Income.UNKNOWN, 7),
)
VSI_MONTHS_CHOICE = ((1, 4), (3, 14), (6, 26), (12, 48), (24, 4), (36, 2), (60, 2))


def _pick(rng: random.Random, weighted):
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights=weights)[0]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def distribute(total: int, weights: dict[str, float], *, step: int = 5) -> dict[str, int]:
    """Splits `total` over the keys in proportion to their weights, in multiples of `step` (largest remainders first);
    whatever is left below one step goes to the largest unit, so the parts add up to `total`."""
    steps = total // step
    share = {k: steps * w / sum(weights.values()) for k, w in sorted(weights.items())}
    result = {k: int(v) for k, v in share.items()}
    for k in sorted(share, key=lambda k: (result[k] - share[k], k))[: steps - sum(result.values())]:
        result[k] += 1
    values = {k: v * step for k, v in result.items()}
    largest = max(sorted(weights), key=lambda k: weights[k])
    values[largest] += total - steps * step
    return values


# --- the campaigns ---------------------------------------------------------------------------------------------


@dataclass
class CampaignPlan:
    slug: str
    name: str
    start: datetime.date
    end: datetime.date
    status: str
    measure: str = Campaign.Measure.WINDOW
    description: str = ""
    # Province-wide arrivals (new + resumed) per day and scheme during the window, before unit shares.
    rates: dict = field(default_factory=dict)
    # Province-level targets; unit targets are derived below.
    province_targets: dict = field(default_factory=dict)


def current_window(today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """A 31-day campaign that started 17 days ago, so the dashboards show a live pace whatever the day."""
    start = today - datetime.timedelta(days=17)
    return start, start + datetime.timedelta(days=30)


def campaign_plans(today: datetime.date) -> list[CampaignPlan]:
    cur_start, cur_end = current_window(today)
    return [
        CampaignPlan(
            slug="bg-2024-ra-quan",
            name="Ngày ra quân phát triển người tham gia BHXH tự nguyện, BHYT hộ gia đình năm 2024",
            start=datetime.date(2024, 3, 14),
            end=datetime.date(2024, 3, 14),
            status=Campaign.Status.CLOSED,
            description="Mỗi đơn vị vận động ít nhất 20 người tham gia BHXH tự nguyện và 30 người tham gia BHYT hộ "
            "gia đình; toàn tỉnh phấn đấu 260 và 390 người.",
            rates={Scheme.VSI: 235, Scheme.HI_FAMILY: 355},
            province_targets={Scheme.VSI: 260, Scheme.HI_FAMILY: 390},
        ),
        CampaignPlan(
            slug="bg-2024-thang-3",
            name="Đợt cao điểm phát triển người tham gia 14–31/3/2024",
            start=datetime.date(2024, 3, 14),
            end=datetime.date(2024, 3, 31),
            status=Campaign.Status.CLOSED,
            description="Chỉ tiêu toàn tỉnh: 1.350 người tham gia BHXH tự nguyện và 1.650 người tham gia BHYT hộ gia "
            "đình (phát triển mới và tham gia lại sau gián đoạn).",
            rates={Scheme.VSI: 62, Scheme.HI_FAMILY: 75},
            province_targets={Scheme.VSI: 1350, Scheme.HI_FAMILY: 1650},
        ),
        CampaignPlan(
            slug="bg-2024-cao-diem-4-5",
            name="Chiến dịch cao điểm tháng 4–5/2024",
            start=datetime.date(2024, 4, 1),
            end=datetime.date(2024, 5, 31),
            status=Campaign.Status.CLOSED,
            description="Hai tháng cao điểm: tăng thêm 5.800 người tham gia BHXH tự nguyện và BHYT hộ gia đình.",
            rates={Scheme.VSI: 38, Scheme.HI_FAMILY: 50},
            province_targets={Scheme.VSI: 2500, Scheme.HI_FAMILY: 3300},
        ),
        CampaignPlan(
            slug="bg-2024-ke-hoach-nam",
            name="Kế hoạch phát triển người tham gia năm 2024",
            start=datetime.date(2024, 1, 1),
            end=datetime.date(2024, 12, 31),
            status=Campaign.Status.CLOSED,
            measure=Campaign.Measure.STOCK,
            description="Kế hoạch giao: số người tham gia BHXH tự nguyện và BHYT hộ gia đình còn hiệu lực cuối năm.",
        ),
        CampaignPlan(
            slug=f"bg-ke-hoach-nam-{today.year}",
            name=f"Kế hoạch phát triển người tham gia năm {today.year}",
            start=datetime.date(today.year, 1, 1),
            end=datetime.date(today.year, 12, 31),
            status=Campaign.Status.ACTIVE,
            measure=Campaign.Measure.STOCK,
            description="Kế hoạch năm đang thực hiện (dữ liệu minh họa).",
        ),
        CampaignPlan(
            slug=f"bg-cao-diem-{cur_start:%Y%m%d}",
            name=f"Đợt cao điểm vận động {cur_start:%d/%m}–{cur_end:%d/%m/%Y}",
            start=cur_start,
            end=cur_end,
            status=Campaign.Status.ACTIVE,
            description="Đợt vận động đang diễn ra (dữ liệu minh họa, tính theo ngày hôm nay).",
            rates={Scheme.VSI: 19, Scheme.HI_FAMILY: 24},
            province_targets={Scheme.VSI: 600, Scheme.HI_FAMILY: 780},
        ),
    ]


# Arrivals outside the campaigns, and a smaller peak in spring 2023 so that 2024 has a "same month last year".
BACKGROUND_RATES = {Scheme.VSI: 1.2, Scheme.HI_FAMILY: 1.8}
SPRING_2023 = (datetime.date(2023, 4, 1), datetime.date(2023, 5, 31), {Scheme.VSI: 8, Scheme.HI_FAMILY: 10})


# --- the simulation ----------------------------------------------------------------------------------------------


@dataclass
class Person:
    idx: int
    si_number: str
    full_name: str
    date_of_birth: datetime.date
    gender: str
    occupation: str
    income: str
    unit: District
    commune: Commune
    agent: CollectionAgent | None
    vsi_months: int
    last_end: dict = field(default_factory=dict)  # scheme -> coverage end of the latest enrollment


@dataclass
class Row:
    person: Person
    scheme: str
    kind: str
    enrolled_on: datetime.date
    coverage_start: datetime.date
    months: int
    agent: CollectionAgent | None


def _exists_on(obj, day: datetime.date) -> bool:
    return (obj.valid_from is None or obj.valid_from <= day) and (obj.ceased_on is None or obj.ceased_on > day)


class Simulation:
    """Day by day from 2021 to today: arrivals (new people, people coming back, people adding a scheme) and, for
    everyone covered, the decision to pay again before their coverage ends or to lapse."""

    def __init__(self, *, rng, today, units, communes_by_unit, agents_by_unit, plans, scale, taken_si_numbers):
        self.rng = rng
        self.today = today
        self.units = units
        self.communes_by_unit = communes_by_unit
        self.agents_by_unit = agents_by_unit
        self.plans = [p for p in plans if p.rates]
        self.scale = scale
        self.taken = set(taken_si_numbers)
        self.people: list[Person] = []
        self.people_by_unit: dict[int, list[Person]] = {u.pk: [] for u in units}
        self.rows: list[Row] = []
        self.events: list = []
        self.seq = 0
        self.lapsed: dict[tuple[int, str], list[Person]] = {}
        # Each unit does better or worse in each campaign; Hiệp Hòa leads the spring peak, as in the report.
        self.performance = {
            (plan.slug, unit.code): rng.uniform(0.75, 1.25) * (1.35 if unit.code == "223" else 1.0)
            for plan in self.plans
            for unit in units
        }

    # helpers
    def _push(self, day, action, person, scheme):
        self.seq += 1
        heapq.heappush(self.events, (day, self.seq, action, person.idx, scheme))

    def _rate(self, day: datetime.date, scheme: str, unit: District) -> float:
        for plan in self.plans:
            if plan.start <= day <= plan.end:
                return plan.rates[scheme] * self.performance[(plan.slug, unit.code)]
        if SPRING_2023[0] <= day <= SPRING_2023[1]:
            return SPRING_2023[2][scheme]
        return BACKGROUND_RATES[scheme]

    def _new_person(self, day: datetime.date, unit: District, scheme: str) -> Person | None:
        communes = [c for c in self.communes_by_unit[unit.pk] if _exists_on(c, day)]
        if not communes:
            return None
        rng = self.rng
        gender = "female" if rng.random() < (0.58 if scheme == Scheme.VSI else 0.52) else "male"
        if scheme == Scheme.VSI:
            age = max(16, min(60, round(rng.triangular(18, 60, 42))))
        else:
            age = int(rng.triangular(0, 85, 35))
        dob = day - datetime.timedelta(days=age * 365 + rng.randrange(365) + age // 4)
        if age < 6:
            occupation = Participant.Occupation.OTHER
        elif age < 18 or (age < 23 and rng.random() < 0.5):
            occupation = Participant.Occupation.STUDENT
        elif age >= 62:
            occupation = _pick(
                rng, ((Participant.Occupation.FARMER, 5), (Participant.Occupation.HOMEMAKER, 3), ("other", 2))
            )
        else:
            occupation = _pick(rng, OCCUPATIONS)
        income = Participant.Income.UNKNOWN if age < 18 else _pick(rng, INCOMES)
        name = f"{_pick(rng, SURNAMES)} {rng.choice(MIDDLE[gender])} {rng.choice(GIVEN[gender])}"
        while True:
            si_number = f"{PROVINCE_CODE}{rng.randrange(10**8):08d}"
            if si_number not in self.taken:
                self.taken.add(si_number)
                break
        agents = self.agents_by_unit.get(unit.pk) or []
        agent = rng.choice(agents) if agents and rng.random() < 0.85 else None
        person = Person(
            idx=len(self.people),
            si_number=si_number,
            full_name=name,
            date_of_birth=dob,
            gender=gender,
            occupation=occupation,
            income=income,
            unit=unit,
            commune=rng.choice(communes),
            agent=agent,
            vsi_months=_pick(rng, VSI_MONTHS_CHOICE),
        )
        self.people.append(person)
        self.people_by_unit[unit.pk].append(person)
        return person

    def _still_there(self, person: Person, day: datetime.date) -> bool:
        # People of a unit or commune that ceased stop appearing here: their next payment is another unit's record.
        return _exists_on(person.unit, day) and _exists_on(person.commune, day)

    def _record(self, person: Person, scheme: str, enrolled_on: datetime.date, coverage_start: datetime.date):
        months = person.vsi_months if scheme == Scheme.VSI else 12
        previous_end = person.last_end.get(scheme)
        kind = derive_kind(previous_end=previous_end, coverage_start=coverage_start)
        coverage_end = add_months(coverage_start, months)
        self.rows.append(Row(person, scheme, kind, enrolled_on, coverage_start, months, person.agent))
        person.last_end[scheme] = coverage_end
        # Reminded before the payment falls due, most pay in the last three weeks of their coverage.
        decide_on = max(coverage_end - datetime.timedelta(days=self.rng.randint(0, 20)), enrolled_on)
        decide_on = decide_on + datetime.timedelta(days=1) if decide_on <= enrolled_on else decide_on
        self._push(decide_on, "due", person, scheme)

    def _arrival(self, day: datetime.date, unit: District, scheme: str):
        rng = self.rng
        roll = rng.random()
        person = None
        pool = self.lapsed.get((unit.pk, scheme))
        if pool and roll < 0.3:
            while pool and person is None:
                candidate = pool.pop(rng.randrange(len(pool)))
                if self._still_there(candidate, day) and candidate.last_end[scheme] < day:
                    person = candidate
        elif roll < 0.4 and self.people_by_unit[unit.pk]:
            candidate = rng.choice(self.people_by_unit[unit.pk])
            if scheme not in candidate.last_end and self._still_there(candidate, day):
                age_days = (day - candidate.date_of_birth).days
                if scheme == Scheme.VSI and not 16 * 365 < age_days < 60 * 365:
                    candidate = None
                person = candidate
        if person is None:
            person = self._new_person(day, unit, scheme)
            if person is None:
                return
        # A family health insurance card bought after a gap (or for the first time) is valid 30 days later.
        start = day + datetime.timedelta(days=30) if scheme == Scheme.HI_FAMILY else day
        self._record(person, scheme, day, start)

    def _due(self, day: datetime.date, person: Person, scheme: str):
        months = person.vsi_months if scheme == Scheme.VSI else 12
        keeps_paying = 0.80 ** (months / 12) if scheme == Scheme.VSI else 0.72
        if self._still_there(person, day) and self.rng.random() < keeps_paying:
            self._record(person, scheme, day, person.last_end[scheme])
        else:
            self._push(person.last_end[scheme] + datetime.timedelta(days=1), "lapse", person, scheme)

    def run(self) -> list[Row]:
        day = HISTORY_START
        while day <= self.today:
            while self.events and self.events[0][0] <= day:
                _when, _seq, action, idx, scheme = heapq.heappop(self.events)
                person = self.people[idx]
                if action == "due":
                    self._due(day, person, scheme)
                else:
                    self.lapsed.setdefault((person.unit.pk, scheme), []).append(person)
            for unit in self.units:
                if not _exists_on(unit, day):
                    continue
                for scheme in (Scheme.VSI, Scheme.HI_FAMILY):
                    lam = self._rate(day, scheme, unit) * UNIT_WEIGHTS.get(unit.code, 50) / 1765 * self.scale
                    for _ in range(_poisson(self.rng, lam)):
                        self._arrival(day, unit, scheme)
            day += datetime.timedelta(days=1)
        return self.rows


# --- writing ---------------------------------------------------------------------------------------------------


def demo_present() -> bool:
    """Whether demo data (or anything in the demo province) is already there."""
    return (
        Campaign.objects.filter(province__code=PROVINCE_CODE).exists()
        or Enrollment.objects.filter(unit__province__code=PROVINCE_CODE).exists()
        or User.objects.filter(username__in=[u.username for u in DEMO_USERS]).exists()
    )


def demo_reset() -> dict[str, int]:
    """Deletes the demo province's campaigns, enrollments, participants, collection organisations and the demo users.

    History is switched off while deleting tens of thousands of rows (and their history rows are removed with them);
    reference data is kept.
    """
    counts = {}
    with override_settings(SIMPLE_HISTORY_ENABLED=False), transaction.atomic():
        province = Province.objects.get(code=PROVINCE_CODE)
        unit_ids = list(District.objects.filter(province=province).values_list("pk", flat=True))
        enrollments = Enrollment.objects.filter(unit_id__in=unit_ids)
        Enrollment.history.filter(unit_id__in=unit_ids).delete()
        counts["enrollments"] = enrollments.delete()[1].get(Enrollment._meta.label, 0)
        # The province's residents go, unless they also have enrollments in another province.
        participants = Participant.objects.filter(commune__district_id__in=unit_ids, enrollments__isnull=True)
        Participant.history.filter(id__in=participants.values("pk")).delete()
        counts["participants"] = participants.delete()[1].get(Participant._meta.label, 0)
        counts["campaigns"] = Campaign.objects.filter(province=province).delete()[1].get(Campaign._meta.label, 0)
        agents = CollectionAgent.objects.filter(organisation__province=province)
        counts["agents"] = agents.delete()[0]
        counts["organisations"] = CollectionOrganisation.objects.filter(province=province).delete()[0]
        users = User.objects.filter(username__in=[u.username for u in DEMO_USERS])
        counts["users"] = users.delete()[1].get(User._meta.label, 0)
    return counts


def _short(name: str) -> str:
    """'Huyện Hiệp Hòa' -> 'huyện Hiệp Hòa', to follow 'Bưu điện' in a name."""
    return name[0].lower() + name[1:]


def _organisations(rng: random.Random, province: Province, units: list[District]) -> dict[int, list]:
    agents_by_unit: dict[int, list[CollectionAgent]] = {}
    orgs: list[tuple[CollectionOrganisation, int, District | None]] = []
    provincial = CollectionOrganisation(
        province=province,
        unit=None,
        code=f"BD{province.code}",
        name=f"Bưu điện {_short(province.name)}",
        kind=CollectionOrganisation.Kind.POST_OFFICE,
    )
    orgs.append((provincial, 2, None))
    for unit in units:
        if unit.is_provincial_office:
            continue
        # A unit that ceased keeps its organisations, inactive: its 2024 enrollments still name them.
        active = unit.ceased_on is None
        orgs.append(
            (
                CollectionOrganisation(
                    province=province,
                    unit=unit,
                    code=f"BD{unit.code}",
                    name=f"Bưu điện {_short(unit.name)}",
                    kind=CollectionOrganisation.Kind.POST_OFFICE,
                    is_active=active,
                ),
                3,
                unit,
            )
        )
        communes = [
            c for c in unit.demo_communes if c.kind == Commune.Kind.COMMUNE and (c.ceased_on is None or not active)
        ]
        if unit.kind == District.Kind.DISTRICT and communes:
            commune = rng.choice(communes)
            orgs.append(
                (
                    CollectionOrganisation(
                        province=province,
                        unit=unit,
                        code=f"HTX{unit.code}",
                        name=f"Hợp tác xã dịch vụ nông nghiệp {commune.name.removeprefix('Xã ')}",
                        kind=CollectionOrganisation.Kind.COOPERATIVE,
                        is_active=active,
                    ),
                    2,
                    unit,
                )
            )
        for commune in rng.sample(communes, min(2, len(communes))):
            orgs.append(
                (
                    CollectionOrganisation(
                        province=province,
                        unit=unit,
                        code=f"DT{commune.code}",
                        name=f"Điểm thu BHXH, BHYT {_short(commune.name)}",
                        kind=CollectionOrganisation.Kind.COMMUNE_POINT,
                        is_active=active,
                    ),
                    1,
                    unit,
                )
            )
    CollectionOrganisation.objects.bulk_create([o for o, _n, _u in orgs])
    agents = []
    for org, count, unit in orgs:
        for i in range(1, count + 1):
            gender = rng.choice(("male", "female"))
            agent = CollectionAgent(
                organisation=org,
                code=f"NVT-{org.code}-{i}",
                full_name=f"{_pick(rng, SURNAMES)} {rng.choice(MIDDLE[gender])} {rng.choice(GIVEN[gender])}",
                phone=f"09{rng.randrange(10**8):08d}",
                is_active=org.is_active,
            )
            agents.append(agent)
            # The provincial post office's agents serve the provincial office's walk-in participants.
            key = unit.pk if unit else next(u.pk for u in units if u.is_provincial_office)
            agents_by_unit.setdefault(key, []).append(agent)
    CollectionAgent.objects.bulk_create(agents)
    return agents_by_unit


def _office_can_enrol(office: District, commune: Commune) -> bool:
    """Whether the enrollment rules accept a provincial-office enrollment for a person living in a district."""
    try:
        validate_enrollment_fields(scheme=Scheme.VSI, months=12, unit=office, commune=commune)
    except ValidationError:
        return False
    return True


def _users(province: Province, units_by_code: dict[str, District]) -> list[User]:
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
    users = []
    for demo in DEMO_USERS:
        first, *_middle, last = demo.full_name.split()
        user = User(username=demo.username, first_name=" ".join([first, *_middle]), last_name=last)
        user.set_password(demo.password)
        user.save()
        user.groups.add(groups[demo.role])
        UserScope.objects.create(
            user=user, province=province, unit=units_by_code[demo.unit_code] if demo.unit_code else None
        )
        users.append(user)
    return users


def _active_on(rows: list[Row], day: datetime.date) -> dict[tuple[str, str], int]:
    """Participants covered on `day`, per unit code and scheme (for setting stock plans)."""
    active: dict[tuple[str, str], int] = {}
    for row in rows:
        if row.coverage_start <= day < add_months(row.coverage_start, row.months):
            key = (row.person.unit.code, row.scheme)
            active[key] = active.get(key, 0) + 1
    return active


def _targets(rng, plan: CampaignPlan, campaign: Campaign, units: list[District], rows: list[Row], today, enrolling):
    existing = [u for u in units if _exists_on(u, plan.start) or _exists_on(u, plan.end)]
    by_code = {u.code: u for u in existing}
    for scheme in (Scheme.VSI, Scheme.HI_FAMILY):
        if plan.measure == Campaign.Measure.STOCK:
            as_of = min(plan.end, today)
            active = _active_on(rows, as_of)
            values = {}
            for unit in existing:
                count = active.get((unit.code, scheme), 0)
                if not count:
                    continue
                # The plan was set so that the units end at 86–104% of it (a year in progress gets a higher bar).
                reach = rng.uniform(0.86, 1.04) * (as_of - plan.start).days / max((plan.end - plan.start).days, 1)
                values[unit.code] = int(math.ceil(count / max(reach, 0.5) / 10) * 10)
            province_value = int(round(sum(values.values()) * 0.98, -1))
        elif plan.slug == "bg-2024-ra-quan":
            # Every unit, and the provincial office, mobilises at least 20 / 30; the province aims at its own figure.
            values = {code: 20 if scheme == Scheme.VSI else 30 for code in by_code}
            province_value = plan.province_targets[scheme]
        else:
            weights = {code: UNIT_WEIGHTS.get(code, 50) for code in by_code if by_code[code] in enrolling}
            province_value = plan.province_targets[scheme]
            # The spring peak's units were given 5% more than the province's own target, as provinces often do.
            headroom = 1.05 if plan.slug == "bg-2024-cao-diem-4-5" else 1.0
            values = distribute(int(round(province_value * headroom, -1)), weights)
        for code, value in sorted(values.items()):
            target_set(campaign=campaign, unit=by_code[code], scheme=scheme, value=value)
        target_set(campaign=campaign, unit=None, scheme=scheme, value=province_value)


@transaction.atomic
def demo_seed(*, seed: int = 2024, scale: float = 1.0, today: datetime.date | None = None) -> dict[str, int]:
    """Creates the demo data. The reference data must be loaded; the caller checks that no demo data exists."""
    today = today or timezone.localdate()
    rng = random.Random(seed)
    province = Province.objects.get(code=PROVINCE_CODE)
    units = list(District.objects.filter(province=province).order_by("code"))
    communes = list(Commune.objects.filter(district__province=province).order_by("code"))
    communes_by_unit: dict[int, list[Commune]] = {u.pk: [] for u in units}
    for commune in communes:
        communes_by_unit[commune.district_id].append(commune)
    for unit in units:
        unit.demo_communes = communes_by_unit[unit.pk]
    units_by_code = {u.code: u for u in units}
    office = units_by_code[f"VP{PROVINCE_CODE}"]
    city_communes = [c for c in communes_by_unit[units_by_code["213"].pk] if c.ceased_on is None]
    if _office_can_enrol(office, city_communes[0]):
        # The provincial office's walk-in participants mostly live in the provincial capital.
        communes_by_unit[office.pk] = city_communes
        sim_units = units
    else:
        sim_units = [u for u in units if u != office]

    users = _users(province, units_by_code)
    agents_by_unit = _organisations(rng, province, units)
    plans = campaign_plans(today)
    taken = set(Participant.objects.filter(si_number__startswith=PROVINCE_CODE).values_list("si_number", flat=True))
    rows = Simulation(
        rng=rng,
        today=today,
        units=sim_units,
        communes_by_unit=communes_by_unit,
        agents_by_unit=agents_by_unit,
        plans=plans,
        scale=scale,
        taken_si_numbers=taken,
    ).run()

    people = sorted({row.person.idx: row.person for row in rows}.values(), key=lambda p: p.idx)
    participants = {
        p.idx: Participant(
            si_number=p.si_number,
            full_name=p.full_name,
            date_of_birth=p.date_of_birth,
            gender=p.gender,
            commune=p.commune,
            occupation=p.occupation,
            income_bracket=p.income,
        )
        for p in people
    }
    Participant.objects.bulk_create(participants.values(), batch_size=2000)
    Participant.history.bulk_history_create(
        list(participants.values()), batch_size=2000, default_change_reason=HISTORY_REASON
    )
    recorder = next(u for u in users if u.username == "canbo_tinh")
    enrollments = []
    for row in rows:
        commune = row.person.commune
        validate_enrollment_fields(scheme=row.scheme, months=row.months, unit=row.person.unit, commune=commune)
        enrollments.append(
            Enrollment(
                participant=participants[row.person.idx],
                scheme=row.scheme,
                kind=row.kind,
                enrolled_on=row.enrolled_on,
                coverage_start=row.coverage_start,
                coverage_end=add_months(row.coverage_start, row.months),
                months=row.months,
                unit=row.person.unit,
                commune=commune,
                organisation=row.agent.organisation if row.agent else None,
                agent=row.agent,
                recorded_by=recorder if row.person.unit == office else None,
            )
        )
    Enrollment.objects.bulk_create(enrollments, batch_size=2000)
    Enrollment.history.bulk_history_create(enrollments, batch_size=2000, default_change_reason=HISTORY_REASON)

    for plan in plans:
        campaign = Campaign.objects.create(
            province=province,
            name=plan.name,
            slug=plan.slug,
            start_date=plan.start,
            end_date=plan.end,
            status=plan.status,
            measure=plan.measure,
            description=plan.description,
        )
        _targets(rng, plan, campaign, units, rows, today, sim_units)

    return {
        "campaigns": len(plans),
        "targets": Target.objects.filter(campaign__province=province).count(),
        "organisations": CollectionOrganisation.objects.filter(province=province).count(),
        "agents": CollectionAgent.objects.filter(organisation__province=province).count(),
        "participants": len(participants),
        "enrollments": len(enrollments),
        "users": len(users),
    }


def demo_digest() -> str:
    """A SHA-256 over the demo province's rows by their natural keys (no ids or timestamps): equal for equal data."""
    province = Q(province__code=PROVINCE_CODE)
    parts = [
        Campaign.objects.filter(province)
        .order_by("slug")
        .values_list("slug", "name", "start_date", "end_date", "status", "measure"),
        Target.objects.filter(campaign__province__code=PROVINCE_CODE)
        .order_by("campaign__slug", "unit__code", "scheme")
        .values_list("campaign__slug", "unit__code", "scheme", "value"),
        CollectionOrganisation.objects.filter(province)
        .order_by("code")
        .values_list("code", "name", "kind", "unit__code"),
        CollectionAgent.objects.filter(organisation__province__code=PROVINCE_CODE)
        .order_by("code")
        .values_list("code", "full_name", "phone", "organisation__code"),
        Participant.objects.filter(enrollments__unit__province__code=PROVINCE_CODE)
        .distinct()
        .order_by("si_number")
        .values_list(
            "si_number", "full_name", "date_of_birth", "gender", "commune__code", "occupation", "income_bracket"
        ),
        Enrollment.objects.filter(unit__province__code=PROVINCE_CODE)
        .order_by("participant__si_number", "scheme", "coverage_start")
        .values_list(
            "participant__si_number",
            "scheme",
            "kind",
            "enrolled_on",
            "coverage_start",
            "coverage_end",
            "months",
            "unit__code",
            "commune__code",
            "organisation__code",
            "agent__code",
            "recorded_by__username",
        ),
        UserScope.objects.filter(province__code=PROVINCE_CODE)
        .order_by("user__username")
        .values_list("user__username", "unit__code", "user__groups__name"),
    ]
    digest = hashlib.sha256()
    for queryset in parts:
        # Sorted here, not by the database: PostgreSQL's collation orders "NVT-BD213-1" unlike SQLite, and the
        # digest must be comparable between the two.
        for line in sorted(repr(row) for row in queryset.iterator(chunk_size=5000)):
            digest.update(line.encode("utf-8"))
            digest.update(b"\n")
        digest.update(b"--\n")
    return digest.hexdigest()
