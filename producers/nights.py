"""Read an election night in the House of Commons Library's layout.

A night directory holds a candidate file (one row per candidate) and a
constituency file (one row per seat, with the declaration time and the
``Result`` column), optionally a ``baseline.csv``. The Library has published
Title Case headers (2024) and snake_case headers (2017-2019); both are read.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from tallyroom.schemas import Candidate, Declaration, NightOpened, Nominee, PreviousResult, SeatBaseline
from tallyroom.schemas.common import LABEL_MAX, ElectionId
from tallyroom.schemas.parties import UK, canonical_party
from tallyroom.streams.change import previous_from_share_change, previous_from_votes

BASELINE_FILE = "baseline.csv"
_ELECTION_ID = TypeAdapter(ElectionId)
# Our names first, then the Library's own download names (HoC-GE2019-results-by-candidate.csv, ...).
CANDIDATE_FILES = ("candidates.csv", "HoC-GE*-results-by-candidate.csv")
CONSTITUENCY_FILES = ("constituencies.csv", "HoC-GE*-results-by-constituency.csv")

# Canonical column -> header spellings, compared after normalising case and separators.
CANDIDATE_COLUMNS = {
    "ons_id": ("ons_id",),
    "constituency": ("constituency_name",),
    "region": ("region_name",),
    "nation": ("country_name",),
    "party_name": ("party_name",),
    "party": ("party_abbreviation",),
    "first_name": ("candidate_first_name", "firstname", "first_name"),
    "surname": ("candidate_surname", "surname"),
    "sitting_mp": ("sitting_mp",),
    "former_mp": ("former_mp",),
    "votes": ("votes",),
    "share": ("share",),
    "change": ("change",),
}
CONSTITUENCY_COLUMNS = {
    "ons_id": ("ons_id",),
    "constituency": ("constituency_name",),
    "region": ("region_name",),
    "nation": ("country_name",),
    "declared_at": ("declaration_time",),
    # Optional: when the seat is expected to declare (a broadcaster's timetable); the page lists the next ones.
    "expected_at": ("expected_declaration_time", "expected_time"),
    "result": ("result",),
    "electorate": ("electorate",),
    "valid_votes": ("valid_votes",),
    "invalid_votes": ("invalid_votes",),
    "majority": ("majority",),
}
REQUIRED_CANDIDATE = ("ons_id", "party", "votes")
REQUIRED_CONSTITUENCY = ("ons_id", "constituency", "declared_at")
# Day first (the Library's own) with or without seconds; ISO 8601 times go to datetime.fromisoformat.
TIME_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%y %H:%M", "%d/%m/%y %H:%M:%S")
# A Declaration keeps at most this many flaws (schemas/events.py); the rest are counted in the last.
MAX_FLAWS = 20
MAX_FLAW_CHARS = 500
_RESULT = re.compile(r"^\s*(?P<winner>.+?)\s+(?:(?P<hold>hold)|gain\s+from\s+(?P<loser>.+?))\s*$", re.I)


class NightFormatError(ValueError):
    """A row that does not parse: names the file, the line and the field."""

    def __init__(self, path: Path, line: int, field_name: str, message: str):
        self.path, self.line, self.field = path, line, field_name
        super().__init__(f"{path.name} line {line}, field '{field_name}': {message}")


@dataclass
class Night:
    election: str
    directory: Path
    opened: NightOpened
    declarations: list[Declaration]
    flaws: list[str] = field(default_factory=list)

    @property
    def total_seats(self) -> int:
        return self.opened.total_seats


@dataclass
class _Row:
    path: Path
    line: int
    values: dict[str, str]
    headers: dict[str, str]

    def get(self, column: str) -> str:
        return self.values.get(column, "").strip()

    def fail(self, column: str, message: str) -> NightFormatError:
        return NightFormatError(self.path, self.line, self.headers.get(column, column), message)

    def count(self, column: str, *, required: bool = False) -> int | None:
        raw = self.get(column).replace(",", "")
        if not raw:
            if required:
                raise self.fail(column, "is empty")
            return None
        try:
            value = int(raw)
        except ValueError:
            raise self.fail(column, f"{raw!r} is not a whole number") from None
        if value < 0:
            raise self.fail(column, f"{value} is negative")
        return value

    def fraction(self, column: str) -> float | None:
        raw = self.get(column).rstrip("%")
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(column, f"{raw!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(column, f"{raw!r} is not a number")
        return value

    def flag(self, column: str) -> bool:
        raw = self.get(column).casefold()
        if raw in ("yes", "y", "true", "1"):
            return True
        if raw in ("no", "n", "false", "0", ""):
            return False
        raise self.fail(column, f"{raw!r} is not yes or no")


def _normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lstrip("\ufeff").casefold()).strip("_")


def _read_rows(path: Path, columns: Mapping[str, tuple[str, ...]], required: tuple[str, ...]) -> list[_Row]:
    # utf-8-sig drops a BOM; newline="" lets csv handle CRLF and LF alike.
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        raw_headers = next(reader)
    except StopIteration:
        raise NightFormatError(path, 1, "header", "file is empty") from None
    by_normal = {_normalise_header(h): i for i, h in enumerate(raw_headers)}
    index: dict[str, int] = {}
    headers: dict[str, str] = {}
    for column, spellings in columns.items():
        for spelling in spellings:
            if spelling in by_normal:
                index[column] = by_normal[spelling]
                headers[column] = raw_headers[by_normal[spelling]].lstrip("\ufeff")
                break
    for column in required:
        if column not in index:
            raise NightFormatError(path, 1, columns[column][0], "column is missing from the header")
    rows = []
    # reader.line_num counts file lines, so a quoted cell holding a line break does not shift later rows.
    last_line = reader.line_num
    for record in reader:
        line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        values = {c: record[i] if i < len(record) else "" for c, i in index.items()}
        rows.append(_Row(path, line, values, headers))
    return rows


def _find(directory: Path, names: tuple[str, ...], what: str) -> Path:
    for name in names:
        matches = sorted(p for p in directory.glob(name) if p.is_file())
        if matches:
            return matches[0]
    raise FileNotFoundError(f"{directory}: no {what} file (looked for {', '.join(names)})")


def parse_uk_time(row: _Row, column: str) -> datetime:
    raw = row.get(column)
    if not raw:
        raise row.fail(column, "is empty")
    parsed: datetime | None = None
    for fmt in TIME_FORMATS:
        try:
            parsed = datetime.strptime(raw, fmt)
            break
        except ValueError:
            continue
    if parsed is None and re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", raw):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
    if parsed is None:
        raise row.fail(column, f"{raw!r} is not a time like 05/07/2024 04:07 or 2024-07-05T04:07:00")
    if parsed.tzinfo is not None:
        return parsed  # an explicit offset says which instant it is
    # UK local time. fold=0 picks the earlier instant for the one ambiguous hour each October.
    return parsed.replace(tzinfo=UK)


def held_before(result: str) -> str | None:
    """Who held the seat before the night, from a Result like 'Lab gain from Con' or 'SNP hold'."""
    match = _RESULT.match(result or "")
    if not match:
        return None
    label = match.group("winner") if match.group("hold") else match.group("loser")
    return canonical_party(label)


def derive_baseline(directory: Path, previous_dir: Path | None = None) -> list[SeatBaseline]:
    """Who held each seat, from the constituency file's Result column, with its previous figures:
    from the night in ``previous_dir`` (matched by ONS id) or, without one, from the candidate
    file's Share and Change columns (previous share = share - change) where it has them.

    With ``previous_dir``, a seat whose Result is empty (or a file without the column, as before
    a night) is held by the party that won it in the previous night.
    """
    path = _find(directory, CONSTITUENCY_FILES, "constituency")
    winners: dict[str, str] = {}
    if previous_dir is not None:
        previous, winners = previous_results(Path(previous_dir))
    else:
        previous = previous_from_change_columns(directory)
    required = ("ons_id", "constituency") + (() if previous_dir is not None else ("result",))
    baseline = []
    for row in _read_rows(path, CONSTITUENCY_COLUMNS, required):
        ons_id = row.get("ons_id")
        held = held_before(row.get("result"))
        if held is None and not row.get("result"):
            held = winners.get(ons_id)
        if held is None:
            raise row.fail("result", f"{row.get('result')!r} is not 'X hold' or 'X gain from Y'")
        try:
            name = _label(row, "constituency name", row.get("constituency"), [])
            baseline.append(
                SeatBaseline(ons_id=ons_id, constituency=name, held_by=held[:LABEL_MAX], previous=previous.get(ons_id))
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            raise row.fail(str(error["loc"][0]) if error["loc"] else "ons_id", error["msg"]) from None
    return baseline


def _seat_candidates(directory: Path) -> dict[str, list[tuple[_Row, Candidate, list[str]]]]:
    path = _find(directory, CANDIDATE_FILES, "candidate")
    by_seat: dict[str, list[tuple[_Row, Candidate, list[str]]]] = defaultdict(list)
    for row in _read_rows(path, CANDIDATE_COLUMNS, REQUIRED_CANDIDATE):
        by_seat[row.get("ons_id")].append((row, *_candidate(row)))
    return by_seat


def previous_results(directory: Path) -> tuple[dict[str, PreviousResult], dict[str, str]]:
    """Each seat's figures in another night in the Library layout (no declaration times needed),
    and the party that won it there."""
    path = _find(directory, CONSTITUENCY_FILES, "constituency")
    electorates = {row.get("ons_id"): row.count("electorate") for row in _read_rows(path, CONSTITUENCY_COLUMNS, ())}
    figures: dict[str, PreviousResult] = {}
    winners: dict[str, str] = {}
    for ons_id, entries in _seat_candidates(directory).items():
        candidates = [c for _, c, _ in entries]
        figures[ons_id] = previous_from_votes(candidates, electorates.get(ons_id))
        # Ranked as a declaration is (streams/tally.py): by votes, then name.
        winners[ons_id] = min(candidates, key=lambda c: (-c.votes, c.name.casefold())).party
    return figures, winners


def previous_from_change_columns(directory: Path) -> dict[str, PreviousResult]:
    """Previous shares from the candidate file's Share and Change columns, where it has a Change column."""
    result: dict[str, PreviousResult] = {}
    for ons_id, entries in _seat_candidates(directory).items():
        if not entries or "change" not in entries[0][0].headers:
            return {}
        total = sum(c.votes for _, c, _ in entries)
        published = [(row.fraction("share"), row.fraction("change")) for row, _, _ in entries]
        # Some releases give percentages (53.8) rather than fractions (0.538).
        scale = 100.0 if any(share is not None and share > 1.0 for share, _ in published) else 1.0
        rows = []
        for (_, candidate, _), (share, change) in zip(entries, published, strict=True):
            share = share / scale if share is not None else (candidate.votes / total if total else 0.0)
            rows.append((candidate.party, share, change / scale if change is not None else None))
        if (figures := previous_from_share_change(rows)) is not None:
            result[ons_id] = figures
    return result


BASELINE_COLUMNS = ["ons_id", "constituency", "held_by", "previous_turnout", "previous_valid_votes", "previous_shares"]


def write_baseline(directory: Path, previous_dir: Path | None = None) -> Path:
    """Write ``baseline.csv``: who held each seat and, when known, its previous turnout and shares
    (``previous_shares`` a JSON object, party -> share)."""
    baseline = derive_baseline(directory, previous_dir)
    out = directory / BASELINE_FILE
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(BASELINE_COLUMNS)
        for seat in baseline:
            before = seat.previous
            writer.writerow(
                [
                    seat.ons_id,
                    seat.constituency,
                    seat.held_by or "",
                    "" if before is None or before.turnout is None else f"{before.turnout:.10g}",
                    "" if before is None or before.valid_votes is None else before.valid_votes,
                    "" if before is None else json.dumps({p: float(f"{v:.10g}") for p, v in before.shares.items()}),
                ]
            )
    return out


def read_baseline(directory: Path) -> dict[str, tuple[str | None, PreviousResult | None]]:
    """Who held each seat, and its previous figures: from ``baseline.csv``, else derived."""
    path = directory / BASELINE_FILE
    if not path.is_file():
        return {seat.ons_id: (seat.held_by, seat.previous) for seat in derive_baseline(directory)}
    columns = {
        "ons_id": ("ons_id",),
        "held_by": ("held_by", "party"),
        "previous_turnout": ("previous_turnout",),
        "previous_valid_votes": ("previous_valid_votes",),
        "previous_shares": ("previous_shares",),
    }
    baseline: dict[str, tuple[str | None, PreviousResult | None]] = {}
    for row in _read_rows(path, columns, ("ons_id", "held_by")):
        previous = None
        if row.get("previous_shares"):
            try:
                shares = json.loads(row.get("previous_shares"))
            except ValueError as exc:
                raise row.fail("previous_shares", f"not a JSON object: {exc}") from None
            try:
                previous = PreviousResult(
                    shares=shares,
                    turnout=row.fraction("previous_turnout"),
                    valid_votes=row.count("previous_valid_votes"),
                )
            except ValidationError as exc:
                error = exc.errors()[0]
                raise row.fail("previous_shares", f"{'.'.join(map(str, error['loc']))}: {error['msg']}") from None
        baseline[row.get("ons_id")] = (canonical_party(row.get("held_by")) or None, previous)
    return baseline


def election_id_for(directory: Path) -> str:
    return directory.resolve().name


def load_night(directory: Path | str, election: str | None = None) -> Night:
    """Every seat of the night as a ``Declaration``, in declaration order."""
    directory = Path(directory)
    election = election or election_id_for(directory)
    try:
        _ELECTION_ID.validate_python(election)
    except ValidationError:
        raise ValueError(
            f"election id {election!r} (from the directory name unless given) must be 1-64 letters, digits, '.', "
            "'_' or '-', starting with a letter or digit: pass --election"
        ) from None
    seats_path = _find(directory, CONSTITUENCY_FILES, "constituency")
    candidates_path = _find(directory, CANDIDATE_FILES, "candidate")
    seat_rows = _read_rows(seats_path, CONSTITUENCY_COLUMNS, REQUIRED_CONSTITUENCY)
    candidate_rows = _read_rows(candidates_path, CANDIDATE_COLUMNS, REQUIRED_CANDIDATE)
    if not seat_rows:
        raise NightFormatError(seats_path, 2, "ons_id", "the file has a header but no seats")
    known: dict[str, _Row] = {}
    for row in seat_rows:
        ons_id = row.get("ons_id")
        if ons_id in known:
            raise row.fail("ons_id", f"seat {ons_id} appears twice (first on line {known[ons_id].line})")
        known[ons_id] = row
    baseline = read_baseline(directory)

    by_seat: dict[str, list[tuple[_Row, Candidate, list[str]]]] = defaultdict(list)
    for row in candidate_rows:
        by_seat[row.get("ons_id")].append((row, *_candidate(row)))

    for ons_id, entries in by_seat.items():
        if ons_id not in known:
            raise entries[0][0].fail("ons_id", f"seat {ons_id} is not in {seats_path.name}")

    declarations: list[Declaration] = []
    flaws: list[str] = []
    for row in seat_rows:
        declaration = _declaration(row, election, by_seat.get(row.get("ons_id"), []))
        declarations.append(declaration)
        flaws.extend(f"{declaration.constituency} ({declaration.ons_id}): {f}" for f in declaration.flaws)

    opened = NightOpened(
        election=election,
        title=election,
        opened_at=min(d.declared_at for d in declarations),
        seats=[
            SeatBaseline(
                ons_id=d.ons_id,
                constituency=d.constituency,
                held_by=baseline.get(d.ons_id, (None, None))[0],
                previous=baseline.get(d.ons_id, (None, None))[1],
                expected_at=parse_uk_time(known[d.ons_id], "expected_at")
                if known[d.ons_id].get("expected_at")
                else None,
                candidates=[Nominee.standing(c) for c in d.candidates],  # the nominations, for live entry
            )
            for d in declarations
        ],
    )
    # sorted() is stable: seats declared in the same minute keep the file's order.
    declarations.sort(key=lambda d: d.declared_at)
    return Night(election, directory, opened, declarations, flaws)


def _label(row: _Row, column: str, value: str, flaws: list[str]) -> str:
    """A label as published, cut to the schema's bound (with a flaw saying so) rather than refused."""
    value = " ".join(value.split())
    if len(value) > LABEL_MAX:
        flaws.append(f"{row.path.name} line {row.line}: {column} of {len(value)} characters cut to {LABEL_MAX}")
        value = value[:LABEL_MAX].rstrip()
    return value


def _candidate(row: _Row) -> tuple[Candidate, list[str]]:
    flaws: list[str] = []
    first, surname = row.get("first_name"), row.get("surname")
    name = " ".join(part for part in (first, surname) if part) or row.get("party_name") or row.get("party")
    party_name = row.get("party_name")
    try:
        candidate = Candidate(
            name=_label(row, "candidate name", name, flaws),
            party=_label(row, "party", canonical_party(row.get("party")), flaws),
            party_name=_label(row, "party name", party_name, flaws) if party_name else None,
            votes=row.count("votes", required=True),
            sitting_mp=row.flag("sitting_mp"),
            former_mp=row.flag("former_mp"),
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        column = str(error["loc"][0]) if error["loc"] else "votes"
        raise row.fail(column, error["msg"]) from None
    return candidate, flaws


def _capped(flaws: list[str]) -> list[str]:
    flaws = [f if len(f) <= MAX_FLAW_CHARS else f[: MAX_FLAW_CHARS - 1] + "…" for f in flaws]
    if len(flaws) > MAX_FLAWS:
        flaws = flaws[: MAX_FLAWS - 1] + [f"and {len(flaws) - MAX_FLAWS + 1} more flaws"]
    return flaws


def _declaration(row: _Row, election: str, entries: list[tuple[_Row, Candidate, list[str]]]) -> Declaration:
    if not entries:
        raise row.fail("ons_id", f"seat {row.get('ons_id')} has no candidates in the candidate file")
    candidates = [c for _, c, _ in entries]
    flaws: list[str] = [flaw for _, _, candidate_flaws in entries for flaw in candidate_flaws]
    constituency = _label(row, "constituency name", row.get("constituency"), flaws)
    nation = _label(row, "country name", row.get("nation"), flaws) or None
    region = _label(row, "region name", row.get("region"), flaws) or None
    total = sum(c.votes for c in candidates)
    valid = row.count("valid_votes")
    if valid is not None and valid != total:
        # The candidates' votes are the primary fact; keep the seat and say what disagreed.
        flaws.append(f"valid votes {valid} in the constituency file differ from the candidates' sum {total}")
    majority = row.count("majority")
    ranked = sorted((c.votes for c in candidates), reverse=True)
    computed = ranked[0] - (ranked[1] if len(ranked) > 1 else 0)
    if majority is not None and majority != computed:
        flaws.append(f"majority {majority} in the constituency file differs from the candidates' votes ({computed})")
    # Two candidates flagged as sitting MPs is no flaw: MPs move seats (2019) and boundaries
    # put two in one seat (2024, seven times); each defeated one is news.
    try:
        return Declaration(
            election=election,
            ons_id=row.get("ons_id"),
            constituency=constituency,
            nation=nation,
            region=region,
            declared_at=parse_uk_time(row, "declared_at"),
            electorate=row.count("electorate"),
            valid_votes=total,
            invalid_votes=row.count("invalid_votes"),
            candidates=candidates,
            flaws=_capped(flaws),
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        column = str(error["loc"][0]) if error["loc"] else "ons_id"
        source = entries[0][0] if column == "candidates" else row
        raise source.fail(column, error["msg"]) from None
