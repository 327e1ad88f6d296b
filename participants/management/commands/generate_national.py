"""Generates a national data set for the benchmark: every province's campaigns, organisations, people and
N enrollments over 2023–2024, loaded with COPY (PostgreSQL only).

    python manage.py generate_national --enrollments 10000000 [--seed 1] [--reset]

What it writes, deterministically for a seed (same seed, same rows):

- the reference data (`load_units`) when it is missing;
- per province an annual plan on the stock (2024, measure "stock") and a peak campaign (1 April – 31 May 2024,
  measure "window"), both active, with a target for every unit that existed in 2024 and each scheme, plus a
  province-level target; targets are set from the generated figures (80–125 % of what was reached), so that some
  units are ahead and some behind;
- collection organisations (a post office per unit, commune service points, some cooperatives) and their agents;
- participants in the communes of every unit (weighted: provinces and units differ in size), each with a payment
  history per scheme: a first payment (kind "new"), then renewals that continue without a gap, and now and then a
  stop and a resumption after a gap ("resumed") — the kinds are what `derive_kind` gives for that history, and no
  two coverages of a person in a scheme overlap. Peak campaign months see more first payments.

The rows are generated in Python and streamed with psycopg's binary COPY into unlogged staging tables, then moved
with one `INSERT … SELECT` per table. The target tables' secondary indexes, unique, foreign-key and exclusion
constraints are dropped for the load and re-created from their own definitions afterwards (building an index once
is far cheaper than maintaining it row by row); it all happens in one transaction, so a failure leaves the tables
as they were and the data that ends up committed has passed every constraint. Simple-history rows are not written
for generated data.

`--reset` first empties enrollments, participants, collection organisations and agents and campaigns (TRUNCATE …
CASCADE: with everything that refers to them, such as snapshots and imports). Without it the command refuses to run
on a database that already holds participants or enrollments.
"""

from __future__ import annotations

import bisect
import datetime
import random
import struct
import tempfile
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Count

from campaigns.models import Campaign
from districts.models import Commune, District, Province
from participants.models import (
    VSI_MONTHS,
    CollectionAgent,
    CollectionOrganisation,
    Enrollment,
    Participant,
    add_months,
)

EPOCH = datetime.date(2000, 1, 1)  # PostgreSQL's binary date: days since this day
FIRST_DAY = datetime.date(2023, 1, 1)
LAST_DAY = datetime.date(2024, 12, 31)
PLAN = (datetime.date(2024, 1, 1), datetime.date(2024, 12, 31))
PEAK = (datetime.date(2024, 4, 1), datetime.date(2024, 5, 31))
# Campaign months in the news reports: they bring more first payments.
BUSY_WINDOWS = (
    (PEAK, 3.0),
    ((datetime.date(2024, 3, 14), datetime.date(2024, 3, 31)), 2.5),
    ((datetime.date(2023, 4, 1), datetime.date(2023, 5, 31)), 1.8),
    ((datetime.date(2023, 11, 1), datetime.date(2023, 12, 31)), 1.4),
    ((datetime.date(2024, 11, 1), datetime.date(2024, 12, 31)), 1.4),
)
SLUG_PREFIX = "nat-"

# Staging codes (small integers in the COPY stream, turned back into the model's values by the INSERT … SELECT).
SCHEMES = ("vsi", "hi_family")
KINDS = ("new", "resumed", "renewal")
NEW, RESUMED, RENEWAL = 0, 1, 2
GENDERS = ("male", "female")
OCCUPATIONS = ("farmer", "trader", "craft", "freelance", "driver", "homemaker", "student", "other")
OCCUPATION_WEIGHTS = (30, 15, 10, 15, 8, 10, 4, 8)
INCOMES = ("lt3", "3to6", "6to10", "gt10", "unknown")
INCOME_WEIGHTS = (35, 35, 15, 5, 10)
VSI_MONTH_WEIGHTS = {1: 30, 3: 15, 6: 20, 12: 27, 24: 3, 36: 2, 48: 1, 60: 2}

SURNAMES = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
]
MIDDLE_MALE = ["Văn", "Đức", "Minh", "Hữu", "Quang", "Công", "Thành", "Xuân"]
MIDDLE_FEMALE = ["Thị", "Ngọc", "Thu", "Thanh", "Kim", "Phương", "Hồng", "Bích"]
GIVEN_MALE = [
    "An",
    "Bình",
    "Cường",
    "Dũng",
    "Hải",
    "Hùng",
    "Khoa",
    "Long",
    "Nam",
    "Phong",
    "Quân",
    "Sơn",
    "Tài",
    "Thắng",
    "Tuấn",
    "Vinh",
]
GIVEN_FEMALE = [
    "Anh",
    "Chi",
    "Dung",
    "Hà",
    "Hạnh",
    "Hoa",
    "Hương",
    "Lan",
    "Linh",
    "Mai",
    "Nga",
    "Nhung",
    "Phượng",
    "Tâm",
    "Thảo",
    "Trang",
]

# The shape of a participant's history.
SHARE_VSI_ONLY, SHARE_BOTH = 0.27, 0.10  # the rest: family health insurance only
SHARE_STOCK = 0.40  # people already paying before 2023: their first payment here falls anywhere in 2023
SHARE_WITH_AGENT = 0.75
P_STOP, P_GAP = 0.10, 0.12  # after each payment: stop paying, or stop and come back after a gap
P_CHANGE_PERIOD = 0.15

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
# Enrollment staging row: the per-payment fields, then the per-chain ones (packed once per person and scheme).
ENROLLMENT_HEAD = struct.Struct(">h iq ih ii ii ii ih")
ENROLLMENT_TAIL = struct.Struct(">ih iq iq iq iq iq")
PARTICIPANT_ROW = struct.Struct(">h iq ii ih iq ih ih ii ii")
FLUSH_BYTES = 4 * 1024 * 1024

STAGE_ENROLLMENT = "generate_national_stage_enrollment"
STAGE_PARTICIPANT = "generate_national_stage_participant"


def _day(value: datetime.date) -> int:
    return (value - EPOCH).days


def _cumulative(weights) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


class _Universe:
    """The units, communes and agents the generator draws from, with their weights."""

    def __init__(self, rng: random.Random):
        units = list(
            District.objects.filter(communes__isnull=False)
            .exclude(kind=District.Kind.PROVINCIAL_OFFICE)
            .exclude(ceased_on__lte=FIRST_DAY)
            .exclude(valid_from__gt=FIRST_DAY)
            .distinct()
            .order_by("code")
            .values_list("pk", "province_id", "ceased_on")
        )
        province_factor = {pid: rng.lognormvariate(0, 0.5) for pid in sorted({p for _, p, _ in units})}
        unit_factor = {pk: province_factor[p] * rng.lognormvariate(0, 0.6) for pk, p, _ in units}
        self.unit_ceased = {pk: _day(ceased) if ceased else 1 << 30 for pk, _, ceased in units}
        agents: dict[int, list[tuple[int, int]]] = {pk: [] for pk, _, _ in units}
        for agent_id, org_id, unit_id in (
            CollectionAgent.objects.filter(organisation__unit_id__in=agents.keys())
            .order_by("pk")
            .values_list("pk", "organisation_id", "organisation__unit_id")
        ):
            agents[unit_id].append((agent_id, org_id))
        self.agents = agents
        communes = list(
            Commune.objects.filter(district_id__in=unit_factor.keys())
            .exclude(ceased_on__lte=FIRST_DAY)
            .order_by("code")
            .values_list("pk", "district_id", "ceased_on")
        )
        self.communes = [(pk, unit_id) for pk, unit_id, _ in communes]
        self.commune_ceased = [
            min(self.unit_ceased[unit_id], _day(ceased) if ceased else 1 << 30) for _, unit_id, ceased in communes
        ]
        self.commune_cum = _cumulative(unit_factor[unit_id] * rng.lognormvariate(0, 0.4) for _, unit_id, _ in communes)


def _first_day_table() -> tuple[list[int], list[float]]:
    days = [_day(FIRST_DAY) + i for i in range((LAST_DAY - FIRST_DAY).days + 1)]
    weights = []
    for index in days:
        day = EPOCH + datetime.timedelta(days=index)
        weight = 1.0
        for (start, end), boost in BUSY_WINDOWS:
            if start <= day <= end:
                weight = max(weight, boost)
        weights.append(weight)
    return days, _cumulative(weights)


def _end_table(months_options) -> dict[int, list[int]]:
    """coverage_end (as a day number) for each start day that can occur and each number of months."""
    base = _day(FIRST_DAY)
    starts = range(base, _day(LAST_DAY) + 32)
    return {
        m: [_day(add_months(EPOCH + datetime.timedelta(days=d), m)) for d in starts] for m in sorted(months_options)
    }


def generate(*, n: int, seed: int, enrollment_sink, participant_sink, universe: _Universe) -> tuple[int, int]:
    """Writes exactly `n` enrollment rows and the participants they belong to (binary COPY rows, no header).

    Returns (participants, enrollments). Pure Python with one seeded generator: the same seed, the same rows."""
    rng = random.Random(seed)
    rnd, randrange = rng.random, rng.randrange
    first_days, first_cum = _first_day_table()
    first_total = first_cum[-1]
    base = _day(FIRST_DAY)
    stock_span = 365
    last = _day(LAST_DAY)
    ends = _end_table(set(VSI_MONTHS) | {12})
    vsi_options = list(VSI_MONTH_WEIGHTS)
    vsi_cum = _cumulative(VSI_MONTH_WEIGHTS.values())
    vsi_total = vsi_cum[-1]
    occupation_cum = _cumulative(OCCUPATION_WEIGHTS)
    income_cum = _cumulative(INCOME_WEIGHTS)
    communes, commune_cum, commune_ceased = universe.communes, universe.commune_cum, universe.commune_ceased
    commune_total = commune_cum[-1]
    agents = universe.agents
    head_pack, tail_pack, person_pack = ENROLLMENT_HEAD.pack, ENROLLMENT_TAIL.pack, PARTICIPANT_ROW.pack
    dob_vsi = (_day(datetime.date(1962, 1, 1)), _day(datetime.date(2006, 1, 1)))
    dob_hi = (_day(datetime.date(1940, 1, 1)), _day(datetime.date(2022, 12, 1)))

    out: list[bytes] = []
    out_size = 0
    people: list[bytes] = []
    written = 0
    person = 0
    while written < n:
        person += 1
        ci = bisect.bisect_right(commune_cum, rnd() * commune_total)
        commune_id, unit_id = communes[ci]
        stop_day = min(last + 1, commune_ceased[ci])
        r = rnd()
        if r < SHARE_VSI_ONLY:
            schemes = (0,)
        elif r < SHARE_VSI_ONLY + SHARE_BOTH:
            schemes = (0, 1)
        else:
            schemes = (1,)
        unit_agents = agents[unit_id]
        if unit_agents and rnd() < SHARE_WITH_AGENT:
            agent_id, org_id = unit_agents[randrange(len(unit_agents))]
        else:
            agent_id = org_id = 0
        first_seen = None
        for scheme in schemes:
            if written >= n:
                break
            tail = tail_pack(2, scheme, 8, person, 8, unit_id, 8, commune_id, 8, org_id, 8, agent_id)
            if rnd() < SHARE_STOCK:
                enrolled = base + int(rnd() * stock_span)
            else:
                enrolled = first_days[bisect.bisect_right(first_cum, rnd() * first_total)]
            start = enrolled
            months = vsi_options[bisect.bisect_right(vsi_cum, rnd() * vsi_total)] if scheme == 0 else 12
            kind = NEW
            while enrolled < stop_day and written < n:
                end = ends[months][start - base]
                written += 1
                out.append(head_pack(12, 8, written, 2, kind, 4, enrolled, 4, start, 4, end, 2, months))
                out.append(tail)
                out_size += 52
                if first_seen is None or enrolled < first_seen:
                    first_seen = enrolled
                r = rnd()
                if r < P_STOP:
                    break
                if r < P_STOP + P_GAP:
                    start = end + 20 + int(rnd() * 300)
                    enrolled = start
                    kind = RESUMED
                else:
                    # Paid a few days before the period runs out, as the reminders ask.
                    start = end
                    enrolled = end - int(rnd() * 21)
                    kind = RENEWAL
                if scheme == 0 and rnd() < P_CHANGE_PERIOD:
                    months = vsi_options[bisect.bisect_right(vsi_cum, rnd() * vsi_total)]
            if out_size >= FLUSH_BYTES:
                enrollment_sink(b"".join(out))
                out.clear()
                out_size = 0
        gender = 1 if rnd() < 0.52 else 0
        low, high = dob_vsi if 0 in schemes else dob_hi
        people.append(
            person_pack(
                8,
                8,
                person,
                4,
                low + int(rnd() * (high - low)),
                2,
                gender,
                8,
                commune_id,
                2,
                bisect.bisect_right(occupation_cum, rnd() * occupation_cum[-1]),
                2,
                bisect.bisect_right(income_cum, rnd() * income_cum[-1]),
                4,
                randrange(1 << 30),
                4,
                first_seen if first_seen is not None else base,
            )
        )
        if len(people) >= 50_000:
            participant_sink(b"".join(people))
            people.clear()
    if out:
        enrollment_sink(b"".join(out))
    if people:
        participant_sink(b"".join(people))
    return person, written


def _organisations_create(rng: random.Random) -> tuple[int, int]:
    """A post office per unit, a commune service point per ~8 communes (up to 3), a cooperative in some units."""
    commune_counts = dict(
        Commune.objects.order_by().values("district_id").annotate(n=Count("id")).values_list("district_id", "n")
    )
    units = (
        District.objects.filter(pk__in=commune_counts).exclude(kind=District.Kind.PROVINCIAL_OFFICE).order_by("code")
    )
    orgs = []
    for unit in units:
        org = {"province_id": unit.province_id, "unit": unit}
        orgs.append(
            CollectionOrganisation(**org, code=f"TC-{unit.code}-01", name=f"Bưu điện {unit.name}", kind="post_office")
        )
        for i in range(min(3, 1 + commune_counts[unit.pk] // 8)):
            orgs.append(
                CollectionOrganisation(
                    **org,
                    code=f"TC-{unit.code}-{i + 2:02d}",
                    name=f"Điểm thu số {i + 1} – {unit.name}",
                    kind="commune_point",
                )
            )
        if rng.random() < 0.3:
            orgs.append(
                CollectionOrganisation(
                    **org, code=f"TC-{unit.code}-09", name=f"Hợp tác xã dịch vụ {unit.name}", kind="cooperative"
                )
            )
    orgs = CollectionOrganisation.objects.bulk_create(orgs, batch_size=2000)
    agents = []
    for org in orgs:
        for j in range(3 if org.kind == "post_office" else 1 + rng.randrange(2)):
            surname = SURNAMES[rng.randrange(len(SURNAMES))]
            given = GIVEN_FEMALE[rng.randrange(len(GIVEN_FEMALE))]
            agents.append(
                CollectionAgent(
                    organisation=org,
                    code=f"NV-{org.code[3:]}-{j + 1}",
                    full_name=f"{surname} Thị {given}",
                    phone=f"09{rng.randrange(10**8):08d}",
                )
            )
    CollectionAgent.objects.bulk_create(agents, batch_size=2000)
    return len(orgs), len(agents)


def _campaigns_create() -> int:
    """Per province: the annual plan on the stock and the peak campaign, both active."""
    campaigns = []
    for province in Province.objects.order_by("code"):
        short = province.name.removeprefix("Tỉnh ").removeprefix("Thành phố ")
        campaigns.append(
            Campaign(
                province=province,
                name=f"Kế hoạch phát triển người tham gia năm 2024 – {short}",
                slug=f"{SLUG_PREFIX}{province.code}-plan-2024",
                start_date=PLAN[0],
                end_date=PLAN[1],
                status=Campaign.Status.ACTIVE,
                measure=Campaign.Measure.STOCK,
            )
        )
        campaigns.append(
            Campaign(
                province=province,
                name=f"Cao điểm vận động BHXH tự nguyện, BHYT hộ gia đình 01/04–31/05/2024 – {short}",
                slug=f"{SLUG_PREFIX}{province.code}-peak-2024",
                start_date=PEAK[0],
                end_date=PEAK[1],
                status=Campaign.Status.ACTIVE,
                measure=Campaign.Measure.WINDOW,
            )
        )
    Campaign.objects.bulk_create(campaigns)
    return len(campaigns)


# ---------------------------------------------------------------------------------------------------------- SQL


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _secondary_structures(cursor, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The table's foreign-key, unique and exclusion constraints and its other indexes (not the primary key), each
    as (name, definition), so that they can be dropped and re-created exactly as they were."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('f', 'u', 'x') ORDER BY contype DESC, conname",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT EXISTS ("
        "  SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid"
        ") ORDER BY c.relname",
        [table],
    )
    return constraints, cursor.fetchall()


def _drop(cursor, table: str, constraints, indexes) -> None:
    for name, _definition in constraints:
        cursor.execute(f"ALTER TABLE {_qn(table)} DROP CONSTRAINT {_qn(name)}")
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {_qn(name)}")


def _recreate(cursor, table: str, constraints, indexes, say) -> None:
    for name, definition in indexes:
        started = time.monotonic()
        cursor.execute(definition)
        say(f"    index {name}: {time.monotonic() - started:.1f} s")
    # Unique and exclusion constraints first ('x' > 'u' > 'f' in the query's order), foreign keys last.
    for name, definition in constraints:
        started = time.monotonic()
        cursor.execute(f"ALTER TABLE {_qn(table)} ADD CONSTRAINT {_qn(name)} {definition}")
        say(f"    constraint {name}: {time.monotonic() - started:.1f} s")


def _copy(cursor, table: str, produce) -> None:
    """Streams binary COPY data into `table`; `produce(write)` calls write(bytes) for the rows."""
    with cursor.copy(f"COPY {_qn(table)} FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(COPY_HEADER)
        produce(copy.write)
        copy.write(COPY_TRAILER)


def _targets_insert(cursor, seed: int) -> int:
    """Targets from the generated figures: each unit reaches 80–125 % of its target (a stable hash decides)."""
    share = "(abs(hashtext(u.code || ':' || s.scheme || ':' || %s)) %% 1000) / 1000.0"
    # Identifiers in these f-strings are this module's constants; every value is a parameter.
    cursor.execute(
        f"""
        WITH peak AS (
            SELECT unit_id, scheme, count(*) AS n FROM participants_enrollment
            WHERE kind IN ('new', 'resumed') AND enrolled_on BETWEEN %s AND %s GROUP BY unit_id, scheme
        ), stock AS (
            SELECT unit_id, scheme, count(DISTINCT participant_id) AS n FROM participants_enrollment
            WHERE coverage_start <= %s AND coverage_end > %s GROUP BY unit_id, scheme
        )
        INSERT INTO campaigns_target (campaign_id, unit_id, scheme, value)
        SELECT c.id, u.id, s.scheme,
               GREATEST(5, round(COALESCE(CASE c.measure WHEN 'stock' THEN st.n ELSE pk.n END, 0)
                                 / (0.8 + 0.45 * {share})))::int
        FROM campaigns_campaign c
        JOIN districts_district u ON u.province_id = c.province_id
             AND (u.ceased_on IS NULL OR u.ceased_on > c.start_date)
             AND (u.valid_from IS NULL OR u.valid_from <= c.end_date)
        CROSS JOIN (VALUES ('vsi'), ('hi_family')) AS s(scheme)
        LEFT JOIN peak pk ON pk.unit_id = u.id AND pk.scheme = s.scheme
        LEFT JOIN stock st ON st.unit_id = u.id AND st.scheme = s.scheme
        WHERE c.slug LIKE %s
        """,  # noqa: S608 # nosec B608 - identifiers are this module's constant table names; every value is a %s parameter
        [*PEAK, PLAN[1], PLAN[1], str(seed), f"{SLUG_PREFIX}%"],
    )
    units = cursor.rowcount
    # The province's own target: close to, but not the sum of, its units' targets.
    cursor.execute(
        """
        INSERT INTO campaigns_target (campaign_id, unit_id, scheme, value)
        SELECT t.campaign_id, NULL, t.scheme,
               round(sum(t.value) * (0.95 + 0.1 * (abs(hashtext(c.slug || ':' || t.scheme || ':' || %s)) %% 1000)
                                             / 1000.0))::int
        FROM campaigns_target t JOIN campaigns_campaign c ON c.id = t.campaign_id
        WHERE c.slug LIKE %s AND t.unit_id IS NOT NULL
        GROUP BY t.campaign_id, c.slug, t.scheme
        """,
        [str(seed), f"{SLUG_PREFIX}%"],
    )
    return units + cursor.rowcount


RESET_TABLES = (
    "participants_enrollment",
    "participants_historicalenrollment",
    "participants_participant",
    "participants_historicalparticipant",
    "participants_collectionagent",
    "participants_collectionorganisation",
    "campaigns_campaign",
    "campaigns_historicalcampaign",
    "campaigns_target",
    "campaigns_historicaltarget",
    "reports_enrollmentchange",
)


def data_reset(cursor) -> None:
    """Empties the generated tables and everything that refers to them (snapshots, imports)."""
    # TRUNCATE refuses tables with deferred foreign-key checks pending in this transaction: run them now.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(f"TRUNCATE {', '.join(_qn(t) for t in RESET_TABLES)} RESTART IDENTITY CASCADE")


class Command(BaseCommand):
    help = "Generate a national benchmark data set (PostgreSQL only): campaigns, targets, organisations, N enrollments."

    def add_arguments(self, parser):
        parser.add_argument("--enrollments", type=int, required=True, help="Number of enrollment rows to generate.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1); same seed, same data.")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="First empty enrollments, participants, organisations and campaigns (and what refers to them).",
        )

    def handle(self, *args, enrollments: int, seed: int, reset: bool, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "generate_national needs PostgreSQL (COPY, unlogged tables): set DATABASE_URL=postgres://… "
                "A national data set does not belong in the embedded SQLite database."
            )
        if enrollments < 1:
            raise CommandError("--enrollments must be at least 1.")
        verbose = options["verbosity"] > 0

        def say(message):
            if verbose:
                self.stdout.write(message)

        clock = time.monotonic()
        call_command("load_units", if_empty=True, verbosity=0)
        timings = {}
        with transaction.atomic(), connection.cursor() as cursor:
            if reset:
                data_reset(cursor)
            elif Participant.objects.exists() or Enrollment.objects.exists():
                raise CommandError(
                    "The database already holds participants or enrollments; run with --reset to replace them."
                )
            elif Campaign.objects.filter(slug__startswith=SLUG_PREFIX).exists():
                raise CommandError("Generated campaigns already exist; run with --reset to replace them.")
            rng = random.Random(f"{seed}:reference")
            started = time.monotonic()
            orgs, agents = _organisations_create(rng)
            campaigns = _campaigns_create()
            universe = _Universe(rng)
            timings["reference"] = time.monotonic() - started
            say(f"{campaigns} campaigns, {orgs} collection organisations, {agents} agents.")

            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL max_parallel_maintenance_workers = 2")
            cursor.execute("SET LOCAL synchronous_commit = off")
            for stage in (STAGE_ENROLLMENT, STAGE_PARTICIPANT):
                cursor.execute(f"DROP TABLE IF EXISTS {_qn(stage)}")
            cursor.execute(
                f"CREATE UNLOGGED TABLE {_qn(STAGE_ENROLLMENT)} (seq bigint, kind smallint, enrolled_on date, "
                "coverage_start date, coverage_end date, months smallint, scheme smallint, participant bigint, "
                "unit_id bigint, commune_id bigint, organisation_id bigint, agent_id bigint)"
            )
            cursor.execute(
                f"CREATE UNLOGGED TABLE {_qn(STAGE_PARTICIPANT)} (person bigint, date_of_birth date, "
                "gender smallint, commune_id bigint, occupation smallint, income smallint, name_seed integer, "
                "first_day date)"
            )

            # Enrollments stream straight into COPY; the participants wait in a temporary file (bounded memory).
            started = time.monotonic()
            with tempfile.TemporaryFile() as people_file:
                people_file.write(COPY_HEADER)
                counts = {}

                def produce(write):
                    counts["people"], counts["rows"] = generate(
                        n=enrollments,
                        seed=seed,
                        enrollment_sink=write,
                        participant_sink=people_file.write,
                        universe=universe,
                    )

                _copy(cursor.cursor, STAGE_ENROLLMENT, produce)
                people_file.write(COPY_TRAILER)
                people_file.seek(0)
                with cursor.cursor.copy(f"COPY {_qn(STAGE_PARTICIPANT)} FROM STDIN (FORMAT BINARY)") as copy:
                    while chunk := people_file.read(FLUSH_BYTES):
                        copy.write(chunk)
            timings["generate_and_copy"] = time.monotonic() - started
            say(
                f"Generated and copied {counts['rows']:,} enrollments of {counts['people']:,} participants "
                f"in {timings['generate_and_copy']:.1f} s."
            )

            started = time.monotonic()
            enrollment_structures = _secondary_structures(cursor, "participants_enrollment")
            participant_structures = _secondary_structures(cursor, "participants_participant")
            # Django's foreign keys are deferred: check the rows written so far now, as ALTER TABLE refuses to run
            # on a table with pending checks.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            _drop(cursor, "participants_enrollment", *enrollment_structures)
            _drop(cursor, "participants_participant", *participant_structures)
            # The reports app's change journal (its triggers) would copy every generated row: the snapshot of a new
            # data set is a full run anyway, which the journal does not need (emptied by the reset).
            cursor.execute("ALTER TABLE participants_enrollment DISABLE TRIGGER USER")
            cursor.execute(
                f"""
                INSERT INTO participants_participant (id, si_number, full_name, date_of_birth, gender, commune_id,
                                                      occupation, income_bracket, created_at)
                SELECT s.person,
                       lpad(p.code, 2, '0') || lpad(s.person::text, 8, '0'),
                       (%s::text[])[1 + s.name_seed %% 16] || ' '
                       || CASE s.gender WHEN 0 THEN (%s::text[])[1 + (s.name_seed >> 4) %% 8]
                                               ELSE (%s::text[])[1 + (s.name_seed >> 4) %% 8] END || ' '
                       || CASE s.gender WHEN 0 THEN (%s::text[])[1 + (s.name_seed >> 7) %% 16]
                                               ELSE (%s::text[])[1 + (s.name_seed >> 7) %% 16] END,
                       s.date_of_birth,
                       (%s::text[])[s.gender + 1],
                       s.commune_id,
                       (%s::text[])[s.occupation + 1],
                       (%s::text[])[s.income + 1],
                       (s.first_day + time '09:00') AT TIME ZONE 'Asia/Ho_Chi_Minh'
                FROM {_qn(STAGE_PARTICIPANT)} s
                JOIN districts_commune c ON c.id = s.commune_id
                JOIN districts_district d ON d.id = c.district_id
                JOIN districts_province p ON p.id = d.province_id
                """,  # noqa: S608 # nosec B608 - identifiers are this module's constant table names; every value is a %s parameter
                [
                    SURNAMES,
                    MIDDLE_MALE,
                    MIDDLE_FEMALE,
                    GIVEN_MALE,
                    GIVEN_FEMALE,
                    list(GENDERS),
                    list(OCCUPATIONS),
                    list(INCOMES),
                ],
            )
            timings["insert_participants"] = time.monotonic() - started
            say(f"  participants: {timings['insert_participants']:.1f} s")
            started = time.monotonic()
            # In the order real rows arrive (by the day recorded), so that the table's physical order is realistic.
            cursor.execute(
                f"""
                INSERT INTO participants_enrollment (participant_id, scheme, kind, enrolled_on, coverage_start,
                    coverage_end, months, unit_id, commune_id, organisation_id, agent_id, created_at, updated_at)
                SELECT s.participant, (%s::text[])[s.scheme + 1], (%s::text[])[s.kind + 1], s.enrolled_on,
                       s.coverage_start, s.coverage_end, s.months, s.unit_id, s.commune_id,
                       NULLIF(s.organisation_id, 0), NULLIF(s.agent_id, 0),
                       (s.enrolled_on + time '10:00') AT TIME ZONE 'Asia/Ho_Chi_Minh',
                       (s.enrolled_on + time '10:00') AT TIME ZONE 'Asia/Ho_Chi_Minh'
                FROM {_qn(STAGE_ENROLLMENT)} s ORDER BY s.enrolled_on, s.seq
                """,  # noqa: S608 # nosec B608 - identifiers are this module's constant table names; every value is a %s parameter
                [list(SCHEMES), list(KINDS)],
            )
            timings["insert_enrollments"] = time.monotonic() - started
            say(f"  enrollments: {timings['insert_enrollments']:.1f} s")
            for stage in (STAGE_ENROLLMENT, STAGE_PARTICIPANT):
                cursor.execute(f"DROP TABLE {_qn(stage)}")

            started = time.monotonic()
            say("  re-creating indexes and constraints:")
            _recreate(cursor, "participants_participant", *participant_structures, say)
            _recreate(cursor, "participants_enrollment", *enrollment_structures, say)
            cursor.execute("ALTER TABLE participants_enrollment ENABLE TRIGGER USER")
            timings["indexes_and_constraints"] = time.monotonic() - started
            for table in ("participants_participant", "participants_enrollment"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, 'id'), COALESCE((SELECT max(id) FROM {_qn(table)}), 1))",  # noqa: S608 # nosec B608 - table is one of two constant names, quoted by quote_name
                    [table],
                )
            started = time.monotonic()
            targets = _targets_insert(cursor, seed)
            timings["targets"] = time.monotonic() - started
            say(f"{targets} targets in {timings['targets']:.1f} s.")

        started = time.monotonic()
        with connection.cursor() as cursor:
            # VACUUM sets the visibility map, so that index-only scans work as they would on a settled table;
            # it cannot run inside a transaction (as in a test), where ANALYZE alone does.
            verb = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            for table in ("participants_participant", "participants_enrollment", "campaigns_target"):
                cursor.execute(f"{verb} {_qn(table)}")
        timings["analyze"] = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {counts['rows']:,} enrollments, {counts['people']:,} participants, {campaigns} campaigns "
                f"and {targets:,} targets in {time.monotonic() - clock:.1f} s (seed {seed})."
            )
        )
        self.timings = timings
