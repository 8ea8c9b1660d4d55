"""Read an election night in the House of Commons Library's layout.

A night directory holds a candidate file (one row per candidate) and a
constituency file (one row per seat, with the declaration time and the
``Result`` column), optionally a ``baseline.csv``. The Library has published
Title Case headers (2024) and snake_case headers (2017-2019); both are read.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from tallyroom.schemas import Candidate, Declaration, NightOpened, Nominee, SeatBaseline
from tallyroom.schemas.parties import UK, canonical_party

BASELINE_FILE = "baseline.csv"
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
}
CONSTITUENCY_COLUMNS = {
    "ons_id": ("ons_id",),
    "constituency": ("constituency_name",),
    "region": ("region_name",),
    "nation": ("country_name",),
    "declared_at": ("declaration_time",),
    "result": ("result",),
    "electorate": ("electorate",),
    "valid_votes": ("valid_votes",),
    "invalid_votes": ("invalid_votes",),
    "majority": ("majority",),
}
REQUIRED_CANDIDATE = ("ons_id", "party", "votes")
REQUIRED_CONSTITUENCY = ("ons_id", "constituency", "declared_at")
TIME_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
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

    def flag(self, column: str) -> bool:
        raw = self.get(column).casefold()
        if raw in ("yes", "y", "true", "1"):
            return True
        if raw in ("no", "n", "false", "0", ""):
            return False
        raise self.fail(column, f"{raw!r} is not yes or no")


def _normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lstrip("\ufeff").casefold()).strip("_")


def _read_rows(path: Path, columns: dict[str, tuple[str, ...]], required: tuple[str, ...]) -> list[_Row]:
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
    for fmt in TIME_FORMATS:
        try:
            naive = datetime.strptime(raw, fmt)
        except ValueError:
            continue
        # fold=0 picks the earlier instant for the one ambiguous hour each October.
        return naive.replace(tzinfo=UK)
    raise row.fail(column, f"{raw!r} is not a time like 05/07/2024 04:07")


def held_before(result: str) -> str | None:
    """Who held the seat before the night, from a Result like 'Lab gain from Con' or 'SNP hold'."""
    match = _RESULT.match(result or "")
    if not match:
        return None
    label = match.group("winner") if match.group("hold") else match.group("loser")
    return canonical_party(label)


def derive_baseline(directory: Path) -> list[SeatBaseline]:
    """Baseline from the constituency file's Result column."""
    path = _find(directory, CONSTITUENCY_FILES, "constituency")
    baseline = []
    for row in _read_rows(path, CONSTITUENCY_COLUMNS, REQUIRED_CONSTITUENCY + ("result",)):
        held = held_before(row.get("result"))
        if held is None:
            raise row.fail("result", f"{row.get('result')!r} is not 'X hold' or 'X gain from Y'")
        try:
            baseline.append(SeatBaseline(ons_id=row.get("ons_id"), constituency=row.get("constituency"), held_by=held))
        except ValidationError as exc:
            error = exc.errors()[0]
            raise row.fail(str(error["loc"][0]) if error["loc"] else "ons_id", error["msg"]) from None
    return baseline


def write_baseline(directory: Path) -> Path:
    baseline = derive_baseline(directory)
    out = directory / BASELINE_FILE
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["ons_id", "constituency", "held_by"])
        for seat in baseline:
            writer.writerow([seat.ons_id, seat.constituency, seat.held_by or ""])
    return out


def read_baseline(directory: Path) -> dict[str, str | None]:
    path = directory / BASELINE_FILE
    if not path.is_file():
        return {seat.ons_id: seat.held_by for seat in derive_baseline(directory)}
    columns = {"ons_id": ("ons_id",), "held_by": ("held_by", "party")}
    rows = _read_rows(path, columns, ("ons_id", "held_by"))
    return {row.get("ons_id"): canonical_party(row.get("held_by")) or None for row in rows}


def election_id_for(directory: Path) -> str:
    return directory.resolve().name


def load_night(directory: Path | str, election: str | None = None) -> Night:
    """Every seat of the night as a ``Declaration``, in declaration order."""
    directory = Path(directory)
    election = election or election_id_for(directory)
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

    by_seat: dict[str, list[tuple[_Row, Candidate]]] = defaultdict(list)
    for row in candidate_rows:
        by_seat[row.get("ons_id")].append((row, _candidate(row)))

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
                held_by=baseline.get(d.ons_id),
                candidates=[Nominee.standing(c) for c in d.candidates],  # the nominations, for live entry
            )
            for d in declarations
        ],
    )
    # sorted() is stable: seats declared in the same minute keep the file's order.
    declarations.sort(key=lambda d: d.declared_at)
    return Night(election, directory, opened, declarations, flaws)


def _candidate(row: _Row) -> Candidate:
    first, surname = row.get("first_name"), row.get("surname")
    name = " ".join(part for part in (first, surname) if part) or row.get("party_name")
    try:
        return Candidate(
            name=name,
            party=canonical_party(row.get("party")),
            party_name=row.get("party_name") or None,
            votes=row.count("votes", required=True),
            sitting_mp=row.flag("sitting_mp"),
            former_mp=row.flag("former_mp"),
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        column = str(error["loc"][0]) if error["loc"] else "votes"
        raise row.fail(column, error["msg"]) from None


def _declaration(row: _Row, election: str, entries: list[tuple[_Row, Candidate]]) -> Declaration:
    if not entries:
        raise row.fail("ons_id", f"seat {row.get('ons_id')} has no candidates in the candidate file")
    candidates = [c for _, c in entries]
    total = sum(c.votes for c in candidates)
    flaws: list[str] = []
    valid = row.count("valid_votes")
    if valid is not None and valid != total:
        # The candidates' votes are the primary fact; keep the seat and say what disagreed.
        flaws.append(f"valid votes {valid} in the constituency file differ from the candidates' sum {total}")
    majority = row.count("majority")
    ranked = sorted((c.votes for c in candidates), reverse=True)
    computed = ranked[0] - (ranked[1] if len(ranked) > 1 else 0)
    if majority is not None and majority != computed:
        flaws.append(f"majority {majority} in the constituency file differs from the candidates' votes ({computed})")
    try:
        return Declaration(
            election=election,
            ons_id=row.get("ons_id"),
            constituency=row.get("constituency"),
            nation=row.get("nation") or None,
            region=row.get("region") or None,
            declared_at=parse_uk_time(row, "declared_at"),
            electorate=row.count("electorate"),
            valid_votes=total,
            invalid_votes=row.count("invalid_votes"),
            candidates=candidates,
            flaws=flaws,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        column = str(error["loc"][0]) if error["loc"] else "ons_id"
        source = entries[0][0] if column == "candidates" else row
        raise source.fail(column, error["msg"]) from None
