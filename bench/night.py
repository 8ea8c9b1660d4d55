"""A synthetic election night for load tests: pure and seeded, no I/O.

N seats with ONS-like ids, a baseline (who held each seat), 3-8 candidates per
seat (some independents), and D declarations in declaration order. When D > N,
the extra D - N declarations are corrections of a minority of seats, each a
later revision with more ballots counted, as on a US county-level night where
the same county reports again and again.

Everything about seat ``s`` at revision ``r`` is a function of (seed, s, r), so
a declaration can be built on demand: a million-event night costs only its
schedule (a list of (seat, revision) pairs) until it is sent.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property

from tallyroom.schemas import Candidate, Declaration, NightOpened, SeatBaseline
from tallyroom.schemas.events import MAX_SEATS
from tallyroom.schemas.parties import INDEPENDENT

# ONS ids are a nation letter and eight digits; "14" is the Westminster
# constituency entity type. A million seats per letter, then the next letter.
ONS_LETTERS = "EWSNL"
PER_LETTER = 1_000_000
NATIONS = {"E": "England", "W": "Wales", "S": "Scotland", "N": "Northern Ireland", "L": "Channel Islands"}
REGIONS = [
    "North East",
    "North West",
    "Yorkshire",
    "East Midlands",
    "West Midlands",
    "East",
    "London",
    "South East",
    "South West",
]
# Parties standing in each nation, strongest first; the weights shape who holds seats.
PARTIES = {
    "E": [("Lab", 0.42), ("Con", 0.32), ("LD", 0.12), ("RUK", 0.08), ("Green", 0.06)],
    "W": [("Lab", 0.45), ("PC", 0.2), ("Con", 0.2), ("LD", 0.08), ("RUK", 0.07)],
    "S": [("SNP", 0.4), ("Lab", 0.35), ("LD", 0.1), ("Con", 0.1), ("Green", 0.05)],
    "N": [("DUP", 0.3), ("SF", 0.3), ("SDLP", 0.15), ("APNI", 0.15), ("UUP", 0.1)],
    "L": [("Ind", 1.0)],
}
MINOR = ["Green", "RUK", "WPB", "SDP", "Yorks", "Heritage", "Lib"]
FIRST = [
    "Alex",
    "Sam",
    "Jo",
    "Priya",
    "Tom",
    "Aisha",
    "Owen",
    "Mei",
    "Kate",
    "Ravi",
    "Ellen",
    "Dan",
    "Nia",
    "Hugo",
    "Zara",
    "Ian",
    "Ruth",
    "Kwame",
    "Fay",
    "Lee",
]
LAST = [
    "Smith",
    "Jones",
    "Patel",
    "Brown",
    "Khan",
    "Evans",
    "Wright",
    "Hughes",
    "Clarke",
    "Lewis",
    "Ahmed",
    "Morgan",
    "Reid",
    "Shaw",
    "Begum",
    "Price",
    "Walsh",
    "Ng",
    "Cole",
    "Hart",
]

NIGHT_START = datetime(2030, 5, 2, 21, 0, tzinfo=UTC)  # polls close
FIRST_RESULTS_HOURS = 8.0  # revision 1 of every seat lands within this
CORRECTIONS_HOURS = 24.0  # corrections keep coming for up to this long after a seat's first result
CORRECTED_SHARE = 0.2  # share of seats that get corrections when D > N


def ons_id(index: int) -> str:
    """The ``index``-th synthetic seat id: E14000000 ... E14999999, then W14000000, ..."""
    letter, number = divmod(index, PER_LETTER)
    if letter >= len(ONS_LETTERS):
        raise ValueError(f"seat index {index} is past the last ONS-like id ({len(ONS_LETTERS) * PER_LETTER} seats)")
    return f"{ONS_LETTERS[letter]}14{number:06d}"


def _rng(*parts: int | str) -> random.Random:
    # String seeds hash deterministically (unlike hash() of a tuple across runs).
    return random.Random("/".join(str(p) for p in parts))


@dataclass(frozen=True)
class CandidatePlan:
    name: str
    party: str
    base_votes: int
    late_votes: int  # ballots found per later revision (before noise)
    sitting_mp: bool


@dataclass(frozen=True)
class SeatPlan:
    index: int
    ons_id: str
    constituency: str
    nation: str
    region: str | None
    held_by: str | None
    electorate: int
    candidates: tuple[CandidatePlan, ...]


def plan_seat(seed: int, index: int) -> SeatPlan:
    """One seat's baseline and candidates, from (seed, index) alone."""
    rng = _rng(seed, "seat", index)
    sid = ons_id(index)
    letter = sid[0]
    parties = PARTIES[letter]
    held_by = rng.choices([p for p, _ in parties], weights=[w for _, w in parties])[0]
    standing = [p for p, _ in parties if p != INDEPENDENT]
    rng.shuffle(standing)
    wanted = rng.randint(3, 8)
    chosen = [held_by] if held_by != INDEPENDENT else []
    chosen += [p for p in standing if p not in chosen][: max(0, wanted - len(chosen) - 1)]
    while len(chosen) < wanted:
        # Fill with independents (told apart by name) and minor parties.
        minor = [p for p in MINOR if p not in chosen]
        chosen.append(rng.choice(minor) if minor and rng.random() < 0.4 else INDEPENDENT)
    electorate = rng.randint(55_000, 110_000)
    turnout = rng.uniform(0.5, 0.72)
    strengths = [_strength(rng, party, party == held_by, dict(parties)) for party in chosen]
    total = sum(strengths)
    valid = int(electorate * turnout)
    names: set[tuple[str, str]] = set()
    candidates = []
    for party, strength in zip(chosen, strengths):
        name = _unique_name(rng, party, names)
        votes = max(1, int(valid * strength / total))
        candidates.append(
            CandidatePlan(
                name=name,
                party=party,
                base_votes=votes,
                late_votes=max(1, votes // rng.randint(40, 200)),
                sitting_mp=party == held_by and rng.random() < 0.8,
            )
        )
    return SeatPlan(
        index=index,
        ons_id=sid,
        constituency=f"Seat {index + 1}",
        nation=NATIONS[letter],
        region=REGIONS[index % len(REGIONS)] if letter == "E" else None,
        held_by=held_by,
        electorate=electorate,
        candidates=tuple(candidates),
    )


def _strength(rng: random.Random, party: str, holder: bool, weights: dict[str, float]) -> float:
    base = weights.get(party, 0.03)
    if party == INDEPENDENT:
        # Mostly small, now and then a local star who can take the seat.
        base = 0.6 if rng.random() < 0.03 else 0.02
    return base * rng.uniform(0.4, 1.6) * (1.25 if holder else 1.0)


def _unique_name(rng: random.Random, party: str, taken: set[tuple[str, str]]) -> str:
    while True:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if len(taken) >= len(FIRST) * len(LAST) // 2:
            name = f"{name} {len(taken)}"
        if (party, name.casefold()) not in taken:
            taken.add((party, name.casefold()))
            return name


def votes_at(seed: int, seat: SeatPlan, revision: int) -> list[int]:
    """Each candidate's votes at ``revision``: later revisions count more late ballots."""
    rng = _rng(seed, "votes", seat.index, revision)
    extra = revision - 1
    return [
        c.base_votes + extra * c.late_votes + (rng.randint(0, c.late_votes) if extra else 0) for c in seat.candidates
    ]


@dataclass(frozen=True)
class NightSpec:
    election: str
    seats: int
    declarations: int
    seed: int = 2030

    def __post_init__(self) -> None:
        if not 1 <= self.seats <= MAX_SEATS:
            raise ValueError(f"seats: {self.seats} is outside 1..{MAX_SEATS} (the schema's MAX_SEATS)")
        if self.declarations < 1:
            raise ValueError(f"declarations: {self.declarations} must be at least 1")


@dataclass(frozen=True)
class Scheduled:
    seconds: float  # after NIGHT_START
    seat: int
    revision: int


def schedule(spec: NightSpec) -> list[Scheduled]:
    """Every declaration in declaration order; each seat's revisions in order 1, 2, 3, ...

    Revisions are consecutive, so each accepted declaration adds exactly 1 to
    the tally version (the sum of the seats' latest revisions): the version held
    in Redis counts the declarations that have landed.
    """
    rng = _rng(spec.seed, "schedule", spec.seats, spec.declarations)
    first_count = min(spec.seats, spec.declarations)
    declared = rng.sample(range(spec.seats), first_count) if first_count < spec.seats else list(range(spec.seats))
    # First results: a hump in the small hours, like a real count.
    first = {
        s: min(max(rng.gauss(FIRST_RESULTS_HOURS * 0.55, FIRST_RESULTS_HOURS * 0.18), 0.1), FIRST_RESULTS_HOURS) * 3600
        for s in declared
    }
    corrections = spec.declarations - first_count
    per_seat: dict[int, int] = {}
    if corrections:
        corrected = rng.sample(declared, max(1, round(len(declared) * CORRECTED_SHARE)))
        for s in rng.choices(corrected, k=corrections):
            per_seat[s] = per_seat.get(s, 0) + 1
    events = [Scheduled(first[s], s, 1) for s in declared]
    for s, n in per_seat.items():
        offsets = sorted(rng.uniform(1, CORRECTIONS_HOURS * 3600) for _ in range(n))
        events += [Scheduled(first[s] + off, s, rev) for rev, off in enumerate(offsets, start=2)]
    events.sort(key=lambda e: (e.seconds, e.seat, e.revision))
    return events


class SyntheticNight:
    """The night's opening and its declarations, built on demand from the spec."""

    def __init__(self, spec: NightSpec, plans: dict[int, SeatPlan] | None = None):
        self.spec = spec
        self._plans: dict[int, SeatPlan] = {} if plans is None else plans

    def renamed(self, election: str) -> SyntheticNight:
        """The same night under another election id (seats and schedule shared, not rebuilt)."""
        twin = SyntheticNight(replace(self.spec, election=election), self._plans)
        if "schedule" in self.__dict__:
            twin.__dict__["schedule"] = self.schedule
        return twin

    def expected_version(self, stop: int | None = None) -> int:
        """The tally version once the first ``stop`` declarations have landed: each seat's last revision, summed."""
        last: dict[int, int] = {}
        for event in self.schedule[:stop]:
            last[event.seat] = event.revision
        return sum(last.values())

    def seat(self, index: int) -> SeatPlan:
        plan = self._plans.get(index)
        if plan is None:
            plan = self._plans[index] = plan_seat(self.spec.seed, index)
        return plan

    @cached_property
    def schedule(self) -> list[Scheduled]:
        return schedule(self.spec)

    @cached_property
    def opened(self) -> NightOpened:
        return NightOpened(
            election=self.spec.election,
            title=f"Synthetic night: {self.spec.seats} seats, {self.spec.declarations} declarations",
            opened_at=NIGHT_START,
            seats=[
                SeatBaseline(ons_id=p.ons_id, constituency=p.constituency, held_by=p.held_by)
                for p in map(self.seat, range(self.spec.seats))
            ],
        )

    def declaration(self, event: Scheduled) -> Declaration:
        plan = self.seat(event.seat)
        votes = votes_at(self.spec.seed, plan, event.revision)
        return Declaration(
            election=self.spec.election,
            ons_id=plan.ons_id,
            revision=event.revision,
            constituency=plan.constituency,
            nation=plan.nation,
            region=plan.region,
            declared_at=NIGHT_START + timedelta(seconds=event.seconds),
            electorate=plan.electorate,
            valid_votes=sum(votes),
            candidates=[
                Candidate(name=c.name, party=c.party, votes=v, sitting_mp=c.sitting_mp)
                for c, v in zip(plan.candidates, votes)
            ],
        )

    def declarations(self, start: int = 0, stop: int | None = None) -> Iterator[Declaration]:
        for event in self.schedule[start:stop]:
            yield self.declaration(event)

    def __len__(self) -> int:
        return len(self.schedule)
