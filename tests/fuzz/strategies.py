"""Hypothesis strategies for declarations, bad and valid, as the raw bytes a client would send.

Each strategy yields a ``Case``: the bytes, what is wrong with them (``category``)
and the field a refusal must name. A bad case has exactly one thing wrong, so the
field is known. Every case is one line: no b"\\n" (``tallyroom declare`` reads lines).

Speed: Hypothesis costs tens of microseconds per choice it records, and a whole
declaration is a few hundred choices (some 15 ms a case; 10,000 cases would take
minutes). So the bulk of a record (seat, candidates, names, times) comes from a
``random.Random`` seeded by one number Hypothesis draws, and Hypothesis draws
directly only what makes a case bad: the category, the field, the bad value.
Those are what shrinking should minimise anyway. Strategies are built once
(module constants, or cached per night): Hypothesis validates each new object.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tallyroom.schemas.limits import Limits

VALID = "valid"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# A plain seeded Random: Hypothesis's own st.randoms() records every call, at a cost.
SEEDED = st.integers(0, 2**64 - 1).map(random.Random)


@dataclass(frozen=True)
class Night:
    election: str
    seats: tuple[tuple[str, str], ...]  # (ons_id, constituency)

    @property
    def ons_ids(self) -> frozenset[str]:
        return frozenset(ons_id for ons_id, _ in self.seats)


@dataclass(frozen=True)
class Case:
    category: str
    raw: bytes
    field: str | None = None  # the field a refusal must name; None: valid
    ons_id: str | None = None
    revision: int | None = None

    @property
    def valid(self) -> bool:
        return self.field is None


# --- valid records, from a seeded Random ---------------------------------------------------

# Text that has broken line- or markup-based tools before: Rich markup and emoji codes,
# Unicode line separators (str.splitlines splits on them), quotes, backslashes, NUL, and
# letters whose case folding changes their length.
TRICKY = (
    "[/x]",
    "[red]",
    ":smile:",
    "\u2028",
    "\u2029",
    "\x85",
    '"',
    "\\",
    "ß",
    "İ",
    "👍",
    "\u200b",
    "\x00",
    "ﬃ",
    "Ω",
    "é",
    "e\u0301",
    "\ufeff",
    "'",
    "<script>",
    "${x}",
    "%s",
    "Robert'); DROP TABLE",
)
PARTIES = ("Lab", "Con", "LD", "RUK", "Green", "SNP", "PC", "DUP", "SF", "Ind", "Spk", "Alliance")
PLANES = ((0x20, 0x7F), (0xA0, 0x250), (0x370, 0x530), (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF), (0x20, 0x2FFFF))
VOTE_EDGES = (0, 1, 999_999_999, 1_000_000_000)


def _alphabet() -> tuple[str, ...]:
    """Some thousands of characters across scripts and emoji, and the tricky pieces (about 1 in 10)."""
    rnd = random.Random(0)
    chars = []
    while len(chars) < 4000:
        low, high = rnd.choice(PLANES)
        code = rnd.randrange(low, high)
        # No surrogates (not encodable) and no C0/C1 controls but the tricky ones.
        if not (0xD800 <= code <= 0xDFFF or code < 0x20 or 0x7F <= code < 0xA0):
            chars.append(chr(code))
    return tuple(chars) + TRICKY * 18


ALPHABET = _alphabet()


def random_name(rnd: random.Random, max_size: int = 40) -> str:
    name = "".join(rnd.choices(ALPHABET, k=rnd.randint(1, max_size)))[:max_size]
    # Names are stripped by the schema: keep them trimmed, so that two kept apart stay apart.
    return name.strip() or "x"


def random_votes(rnd: random.Random) -> int:
    roll = rnd.random()
    if roll < 0.05:
        return rnd.choice(VOTE_EDGES)
    return rnd.randint(0, 1_000_000_000) if roll < 0.15 else rnd.randint(0, 60_000)


def random_candidates(rnd: random.Random, count: int) -> list[dict]:
    people: list[dict] = []
    seen: set[tuple[str, str]] = set()
    while len(people) < count:
        party = rnd.choice(PARTIES) if rnd.random() < 0.8 else random_name(rnd)
        candidate = {"name": random_name(rnd), "party": party, "votes": random_votes(rnd)}
        identity = (party, candidate["name"].casefold())  # as Declaration tells candidates apart
        if identity in seen:
            continue
        seen.add(identity)
        if rnd.random() < 0.5:
            candidate["party_name"] = random_name(rnd, 60)
        for flag in ("sitting_mp", "former_mp"):
            if rnd.random() < 0.3:
                candidate[flag] = rnd.random() < 0.5
        people.append(candidate)
    return people


ZONES = (
    UTC,
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
)
NIGHT_START = datetime(2024, 7, 4, 20, tzinfo=UTC)


def random_time(rnd: random.Random) -> str:
    """The night's clock as clients write it: ISO 8601 with an offset or Z, T or a space."""
    moment = NIGHT_START + timedelta(seconds=rnd.randint(0, 18 * 3600), microseconds=rnd.randint(0, 999_999))
    text = moment.astimezone(rnd.choice(ZONES)).isoformat(
        sep=rnd.choice("T "), timespec=rnd.choice(["minutes", "seconds", "microseconds"])
    )
    return text.replace("+00:00", "Z") if rnd.random() < 0.5 else text


def random_record(rnd: random.Random, night: Night, max_candidates: int = 12) -> dict:
    """A valid declaration of one of the night's seats."""
    ons_id, constituency = rnd.choice(night.seats)
    candidates = random_candidates(rnd, rnd.randint(1, max_candidates))
    record = {
        "kind": "declaration",
        "election": night.election,
        "ons_id": ons_id,
        "constituency": constituency,
        "declared_at": random_time(rnd),
        "candidates": candidates,
    }
    optional = {
        "schema_version": lambda: 1,
        "revision": lambda: rnd.choice([1, 2, 1_000_000, rnd.randint(1, 1_000_000)]),
        "nation": lambda: random_name(rnd),
        "region": lambda: random_name(rnd),
        "electorate": lambda: random_votes(rnd),
        "invalid_votes": lambda: random_votes(rnd),
        "flaws": lambda: [random_name(rnd, 100) for _ in range(rnd.randint(0, 3))],
    }
    for key, make in optional.items():
        if rnd.random() < 0.4:
            record[key] = make()
    total = sum(c["votes"] for c in candidates)
    if total <= 1_000_000_000 and rnd.random() < 0.5:
        record["valid_votes"] = total
    return record


def dump(record: object, rnd: random.Random) -> bytes:
    """JSON as different clients write it: ASCII-escaped or raw UTF-8, compact or spaced."""
    separators = rnd.choice([(",", ":"), (", ", ": ")])
    return json.dumps(record, ensure_ascii=rnd.random() < 0.3, separators=separators).encode("utf-8")


def _candidate_index(rnd: random.Random, record: dict) -> int:
    return rnd.randrange(len(record["candidates"]))


def _put(rnd: random.Random, record: dict, key: str, value: object, on_candidate: bool) -> str:
    """Set ``key`` on one candidate (picked by ``rnd``) or on the record itself; returns its path."""
    if on_candidate:
        index = _candidate_index(rnd, record)
        record["candidates"][index][key] = value
        return f"candidates.{index}.{key}"
    record[key] = value
    return key


@st.composite
def _valid_cases(draw, night: Night) -> Case:
    rnd = draw(SEEDED)
    record = random_record(rnd, night)
    return Case(VALID, dump(record, rnd), None, record["ons_id"], record.get("revision", 1))


@lru_cache
def valid_cases(night: Night) -> st.SearchStrategy[Case]:
    return _valid_cases(night)


# --- bad declarations: one thing wrong each ----------------------------------------------------


def _base(draw, night: Night, max_candidates: int = 12) -> tuple[random.Random, dict]:
    rnd = draw(SEEDED)
    return rnd, random_record(rnd, night, max_candidates)


# No line breaks of any kind: a bad case must stay one record in every channel.
GARBAGE = st.text(
    st.characters(
        codec="utf-8", exclude_categories=("Cs", "Zl", "Zp"), exclude_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85"
    ),
    min_size=1,
    max_size=200,
).filter(lambda s: s.strip())
MALFORMATIONS = ("truncated", "trailing", "leading", "trailing_comma", "quotes", "garbage", "deep", "comment", "bom")
TRAILING = ("x", "}", ",", "]", "{}", "null", '"', "1")
LEADING = ("x", "{", "[", ",", ")]}'", '"')


@st.composite
def _malformed_json(draw, night: Night) -> Case:
    rnd, record = _base(draw, night)
    text = dump(record, rnd).decode("utf-8")
    how = draw(st.sampled_from(MALFORMATIONS))
    if how == "truncated":
        text = text[: rnd.randrange(1, len(text))]
    elif how == "trailing":
        text += draw(st.sampled_from(TRAILING))
    elif how == "leading":
        text = draw(st.sampled_from(LEADING)) + text
    elif how == "trailing_comma":
        text = text[:-1] + ",}"
    elif how == "quotes":
        text = text.replace('"', "'")
    elif how == "garbage":
        text = draw(GARBAGE)
    elif how == "deep":
        depth = draw(st.integers(1, 5000))
        text = "[" * depth + "]" * depth
    elif how == "comment":
        text = "/* entered by hand */ " + text
    else:
        text = "\ufeff" + text
    return Case(f"malformed_json/{how}", text.encode("utf-8"), "payload")


NOT_OBJECT_VALUES = st.one_of(
    st.lists(st.integers(), max_size=3),
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)


@st.composite
def _not_objects(draw) -> Case:
    # A composite, not NOT_OBJECT_VALUES.map(...): st.one_of would flatten those six
    # branches into its own and draw "not an object" six times as often as the rest.
    return Case("not_an_object", json.dumps(draw(NOT_OBJECT_VALUES)).encode(), "payload")


# Values of a JSON type the field does not take (None only where the field needs a value).
_NUMBERS = st.one_of(st.integers(-10, 10**6), st.floats(allow_nan=False, allow_infinity=False))
_STRINGS = st.one_of(st.text(max_size=10), st.integers(0, 10**6).map(str), st.sampled_from(["true", "yes", "1"]))
_LISTS = st.lists(st.integers(), max_size=2)
_DICTS = st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
_FLOAT_INTS = st.integers(0, 1000).map(float)  # 12.0 is not 12 here
WRONG_VALUES = {
    "str": st.one_of(_NUMBERS, st.booleans(), _LISTS, _DICTS, st.none()),
    "optstr": st.one_of(_NUMBERS, st.booleans(), _LISTS, _DICTS),
    "int": st.one_of(_STRINGS, _FLOAT_INTS, st.booleans(), _LISTS, _DICTS, st.none()),
    "optint": st.one_of(_STRINGS, _FLOAT_INTS, st.booleans(), _LISTS, _DICTS),
    "bool": st.one_of(st.integers(0, 1), _STRINGS, st.floats(), _LISTS, st.none()),
    "list": st.one_of(_STRINGS, _NUMBERS, st.booleans(), _DICTS, st.none()),
    "version": st.one_of(st.just(1.0), st.just(True), st.just("1"), st.integers(2, 9), st.none()),
}
TOP_TYPES = {
    "election": "str",
    "ons_id": "str",
    "constituency": "str",
    "revision": "int",
    "nation": "optstr",
    "region": "optstr",
    "electorate": "optint",
    "valid_votes": "optint",
    "invalid_votes": "optint",
    "candidates": "list",
    "flaws": "list",
    "schema_version": "version",
}
CANDIDATE_TYPES = {
    "name": "str",
    "party": "str",
    "party_name": "optstr",
    "votes": "int",
    "sitting_mp": "bool",
    "former_mp": "bool",
}
TOP_KEYS, CANDIDATE_KEYS = tuple(sorted(TOP_TYPES)), tuple(sorted(CANDIDATE_TYPES))


@st.composite
def _wrong_types(draw, night: Night) -> Case:
    rnd, record = _base(draw, night)
    on_candidate = not draw(st.booleans())
    keys, types = (CANDIDATE_KEYS, CANDIDATE_TYPES) if on_candidate else (TOP_KEYS, TOP_TYPES)
    key = draw(st.sampled_from(keys))
    path = _put(rnd, record, key, draw(WRONG_VALUES[types[key]]), on_candidate)
    return Case(f"wrong_type/{key}", dump(record, rnd), f"declaration.{path}")


BAD_ITEMS = st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=1))  # not text: a flaw is text


@st.composite
def _wrong_items(draw, night: Night) -> Case:
    """A list of the right kind with an element of the wrong one."""
    rnd, record = _base(draw, night)
    key = draw(st.sampled_from(("candidates", "flaws")))
    items = record.setdefault(key, [])
    index = rnd.randint(0, len(items))
    items.insert(index, draw(BAD_ITEMS))
    return Case(f"wrong_type/{key}_item", dump(record, rnd), f"declaration.{key}.{index}")


RANGED = ("votes", "electorate", "valid_votes", "invalid_votes", "revision")
OUT_OF_RANGE_COUNTS = st.one_of(
    st.integers(max_value=-1), st.integers(1_000_000_001, 10**40), st.sampled_from([2**63, 2**64 + 1])
)
OUT_OF_RANGE_REVISIONS = st.one_of(st.integers(max_value=0), st.integers(1_000_001, 10**30))


@st.composite
def _out_of_range(draw, night: Night) -> Case:
    """Negative counts, counts over a billion, revision 0 or over a million."""
    rnd, record = _base(draw, night)
    where = draw(st.sampled_from(RANGED))
    value = draw(OUT_OF_RANGE_REVISIONS if where == "revision" else OUT_OF_RANGE_COUNTS)
    path = _put(rnd, record, where, value, on_candidate=where == "votes")
    label = "negative" if value < 0 else ("zero" if value == 0 else "huge")
    return Case(f"{label}/{where}", dump(record, rnd), f"declaration.{path}")


TWIN_NAMES = ("same", "padded", "casefolded")


@st.composite
def _duplicated_candidates(draw, night: Night) -> Case:
    rnd, record = _base(draw, night, max_candidates=8)
    people = record["candidates"]
    twin = dict(people[_candidate_index(rnd, record)])
    how = draw(st.sampled_from(TWIN_NAMES))
    twin["name"] = {"same": twin["name"], "padded": f"  {twin['name']} ", "casefolded": twin["name"].casefold()}[how]
    twin["votes"] = draw(st.integers(0, 50_000))
    people.insert(rnd.randint(0, len(people)), twin)
    record.pop("valid_votes", None)
    return Case(f"duplicated_candidate/{how}", dump(record, rnd), "declaration.candidates")


ONSISH_IDS = st.tuples(st.sampled_from("EWSNL"), st.integers(0, 10**8 - 1)).map(lambda t: f"{t[0]}{t[1]:08d}")


@st.composite
def _unknown_seats(draw, night: Night) -> Case:
    """A well-formed ONS id that is not one of the night's seats."""
    rnd, record = _base(draw, night)
    known = night.ons_ids
    record["ons_id"] = draw(ONSISH_IDS.filter(lambda ons_id: ons_id not in known))
    return Case("unknown_seat", dump(record, rnd), "declaration.ons_id", record["ons_id"])


def _iso_in(year: int) -> str:
    return f"{year:04d}-07-05T03:31:00+01:00"


BAD_TIMES = st.one_of(
    st.one_of(st.sampled_from([1, 9999, 1799, 2200]), st.integers(1, 1799), st.integers(2200, 9999)).map(_iso_in),
    st.datetimes(datetime(2024, 7, 4), datetime(2024, 7, 6)).map(datetime.isoformat),  # naive
    st.sampled_from(
        [
            "05/07/2024 03:31",
            "5 July 2024, 3.31am",
            "yesterday",
            "2024-07-05",
            "03:31",
            "1720146660",
            "2024-13-45T99:99:99Z",
            "2024-02-30T01:00:00Z",
            "2024-07-05T03:31:00+25:00",
            "2024-07-05T03:31:00 BST",
            "",
        ]
    ),
    GARBAGE.filter(lambda s: not _ISO.match(s)),
    st.one_of(st.integers(0, 2**33), st.floats(0, 2e9), st.none(), st.booleans()),  # Unix times and the like
)


@st.composite
def _bad_timestamps(draw, night: Night) -> Case:
    rnd, record = _base(draw, night)
    record["declared_at"] = draw(BAD_TIMES)
    return Case("bad_timestamp", dump(record, rnd), "declaration.declared_at")


REQUIRED = ("election", "ons_id", "constituency", "declared_at", "candidates")
REQUIRED_OF_CANDIDATE = ("name", "party", "votes")


@st.composite
def _missing_fields(draw, night: Night) -> Case:
    rnd, record = _base(draw, night)
    if draw(st.booleans()):
        key = draw(st.sampled_from(REQUIRED))
        del record[key]
        path = key
    else:
        index, key = _candidate_index(rnd, record), draw(st.sampled_from(REQUIRED_OF_CANDIDATE))
        del record["candidates"][index][key]
        path = f"candidates.{index}.{key}"
    return Case(f"missing/{key}", dump(record, rnd), f"declaration.{path}")


KNOWN_KEYS = set(TOP_TYPES) | set(CANDIDATE_TYPES) | {"kind", "declared_at"}
EXTRA_KEYS = st.one_of(
    st.sampled_from(["ons", "seat", "votes", "turnout", "Election", "declaredAt", "__proto__", ""]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20),
).filter(lambda key: key not in KNOWN_KEYS)
EXTRA_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=10))


@st.composite
def _extra_fields(draw, night: Night) -> Case:
    rnd, record = _base(draw, night)
    key, value = draw(EXTRA_KEYS), draw(EXTRA_VALUES)
    path = _put(rnd, record, key, value, on_candidate=not draw(st.booleans()))
    return Case("extra_field", dump(record, rnd), f"declaration.{path}")


# The right type, the wrong shape: empty or over-long names, malformed ids.
BAD_SHAPES = {
    "election": st.sampled_from(["", "ge 2024", "-ge2024", "ge2024/x", "é", "x" * 65]),
    "ons_id": st.sampled_from(
        ["", "E1400106", "E140010633", "e14001063", "X14001063", "E14OO1063", " E14001063", "E14001063\t"]
    ),
    "constituency": st.sampled_from(["", "   ", "\t", "x" * 201]),
    "name": st.sampled_from(["", " ", "x" * 201]),
}
SHAPED = tuple(BAD_SHAPES)


@st.composite
def _bad_shapes(draw, night: Night) -> Case:
    rnd, record = _base(draw, night)
    key = draw(st.sampled_from(SHAPED))
    value = draw(BAD_SHAPES[key])
    path = _put(rnd, record, key, value, on_candidate=key == "name")
    return Case(f"bad_shape/{key}", dump(record, rnd), f"declaration.{path}")


WRONG_KINDS = st.one_of(
    st.sampled_from(["Declaration", "decl", "result", "", "declaration "]), st.integers(), st.none()
)


@st.composite
def _wrong_kinds(draw, night: Night) -> Case:
    rnd, record = _base(draw, night)
    if draw(st.booleans()):
        del record["kind"]
    else:
        record["kind"] = draw(WRONG_KINDS)
    return Case("wrong_kind", dump(record, rnd), "kind")


@st.composite
def _votes_mismatch(draw, night: Night) -> Case:
    rnd, record = _base(draw, night)
    for candidate in record["candidates"]:
        candidate["votes"] %= 100_000
    total = sum(c["votes"] for c in record["candidates"])
    record["valid_votes"] = draw(st.integers(0, 10_000_000).filter(lambda votes: votes != total))
    return Case("valid_votes_mismatch", dump(record, rnd), "declaration")


@st.composite
def _too_many_candidates(draw, night: Night, limits: Limits) -> Case:
    rnd, record = _base(draw, night, max_candidates=1)
    count = draw(st.integers(limits.max_candidates + 1, 130))
    record["candidates"] = [{"name": f"Candidate {i}", "party": "Ind", "votes": i} for i in range(count)]
    record.pop("valid_votes", None)
    return Case("too_many_candidates", dump(record, rnd), "declaration.candidates")


@st.composite
def _oversized(draw, night: Night, limits: Limits) -> Case:
    """A valid declaration padded with JSON whitespace past the limit."""
    rnd, record = _base(draw, night)
    raw = dump(record, rnd)
    size = draw(st.integers(limits.max_payload_bytes + 1, limits.max_payload_bytes + 4096))
    return Case("oversized", raw[:-1] + b" " * max(size - len(raw), 0) + raw[-1:], "payload")


# Each is invalid wherever it lands: an orphan continuation, a lead byte without its
# continuation, an overlong form, an encoded surrogate, a 5-byte form.
INVALID_UTF8 = (
    b"\xff",
    b"\xfe",
    b"\xc3\x28",
    b"\xa0\xa1",
    b"\xe2\x28\xa1",
    b"\xe2\x82",
    b"\xf0\x28\x8c\xbc",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
)


@st.composite
def _not_utf8(draw, night: Night) -> Case:
    rnd, record = _base(draw, night)
    raw = dump(record, rnd)
    at = rnd.randint(0, len(raw))
    return Case("not_utf8", raw[:at] + draw(st.sampled_from(INVALID_UTF8)) + raw[at:], "payload")


@lru_cache
def bad_cases(night: Night, limits: Limits) -> st.SearchStrategy[Case]:
    return st.one_of(
        _malformed_json(night),
        _not_objects(),
        _wrong_types(night),
        _wrong_items(night),
        _out_of_range(night),
        _duplicated_candidates(night),
        _unknown_seats(night),
        _bad_timestamps(night),
        _missing_fields(night),
        _extra_fields(night),
        _bad_shapes(night),
        _wrong_kinds(night),
        _votes_mismatch(night),
        _too_many_candidates(night, limits),
        _oversized(night, limits),
        _not_utf8(night),
    )


# --- many cases at once, for the channels that take a batch -----------------------------------


def generate(strategy: st.SearchStrategy, count: int) -> list:
    """``count`` draws of ``strategy``, the same ones every run (derandomized, no database)."""
    drawn: list = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value) -> None:
        drawn.append(value)

    collect()
    if len(drawn) < count:
        raise AssertionError(f"Hypothesis drew {len(drawn)} cases, {count} wanted")
    return drawn[:count]
