"""The HoC Library night loader (tallyroom.producers.nights), on the real 2024 files and on small hand-made nights.

Expectations for the 2024 night are computed here from the CSV files with the csv module,
independently of the loader; only 650 seats / 4,515 candidates are taken from the issue.
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tallyroom.producers.nights import (
    NightFormatError,
    derive_baseline,
    election_id_for,
    held_before,
    load_night,
    write_baseline,
)

GE2024 = Path(__file__).resolve().parents[2] / "data" / "ge2024"
BST = timezone(timedelta(hours=1))
GMT = UTC


# --- helpers ------------------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def winner(declaration):
    return max(declaration.candidates, key=lambda c: c.votes)


def offset(dt: datetime) -> timedelta | None:
    return dt.utcoffset()


def tz_key(dt: datetime) -> str | None:
    return getattr(dt.tzinfo, "key", None)


def held_from_result(result: str) -> str:
    """Independent reading of the Result column: 'X gain from Y' -> Y, 'X hold' -> X."""
    if " gain from " in result:
        return result.split(" gain from ", 1)[1].strip()
    assert result.endswith(" hold"), result
    return result[: -len(" hold")].strip()


# --- the 2024 night -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seats_csv() -> list[dict[str, str]]:
    return read_csv(GE2024 / "constituencies.csv")


@pytest.fixture(scope="module")
def candidates_csv() -> list[dict[str, str]]:
    return read_csv(GE2024 / "candidates.csv")


@pytest.fixture(scope="module")
def night2024():
    return load_night(GE2024)


def test_2024_night_has_every_seat_and_candidate(night2024, seats_csv, candidates_csv):
    assert len(seats_csv) == 650 and len(candidates_csv) == 4515  # the files are what the issue says
    assert len(night2024.declarations) == 650
    assert night2024.total_seats == 650
    assert sum(len(d.candidates) for d in night2024.declarations) == 4515
    assert {d.ons_id for d in night2024.declarations} == {r["ONS ID"] for r in seats_csv}
    assert night2024.election == "ge2024"
    assert {d.election for d in night2024.declarations} == {"ge2024"}
    assert night2024.flaws == []


def test_2024_declarations_in_declaration_order_from_houghton(night2024):
    times = [d.declared_at for d in night2024.declarations]
    assert all(a <= b for a, b in zip(times, times[1:]))
    first = night2024.declarations[0]
    assert first.constituency == "Houghton and Sunderland South"
    assert first.declared_at == datetime(2024, 7, 4, 23, 30, tzinfo=BST)
    assert first.declared_at.isoformat() == "2024-07-04T23:30:00+01:00"
    assert night2024.opened.opened_at == first.declared_at
    last = night2024.declarations[-1]
    assert last.constituency == "Inverness, Skye and West Ross-shire"
    assert last.declared_at == datetime(2024, 7, 6, 18, 0, tzinfo=BST)


def test_2024_times_are_uk_local_and_aware(night2024, seats_csv):
    published = {r["ONS ID"]: datetime.strptime(r["Declaration time"], "%d/%m/%Y %H:%M") for r in seats_csv}
    for d in night2024.declarations:
        assert d.declared_at.tzinfo is not None, d.ons_id
        assert tz_key(d.declared_at) == "Europe/London", d.ons_id
        assert offset(d.declared_at) == timedelta(hours=1), d.ons_id  # BST in July
        # the wall-clock time in the file, read as BST
        assert d.declared_at == published[d.ons_id].replace(tzinfo=BST), d.ons_id


def test_2024_valid_votes_equal_candidates_sum_for_every_seat(night2024, seats_csv, candidates_csv):
    sums: dict[str, int] = defaultdict(int)
    counts: Counter[str] = Counter()
    for r in candidates_csv:
        sums[r["ONS ID"]] += int(r["Votes"])
        counts[r["ONS ID"]] += 1
    valid = {r["ONS ID"]: int(r["Valid votes"]) for r in seats_csv}
    assert sums == valid  # the published file is consistent with itself
    for d in night2024.declarations:
        assert d.valid_votes == valid[d.ons_id], d.ons_id
        assert d.candidate_votes == valid[d.ons_id], d.ons_id
        assert len(d.candidates) == counts[d.ons_id], d.ons_id
        assert d.flaws == []


def test_2024_grand_totals_match_the_csv(night2024, seats_csv, candidates_csv):
    votes_csv: Counter[str] = Counter()
    by_seat: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in candidates_csv:
        votes_csv[r["Party abbreviation"]] += int(r["Votes"])
        by_seat[r["ONS ID"]].append((int(r["Votes"]), r["Party abbreviation"]))
    seats_won_csv = Counter(max(entries)[1] for entries in by_seat.values())
    assert seats_won_csv == Counter(r["First party"] for r in seats_csv)  # cross-check the CSV itself
    assert sum(seats_won_csv.values()) == 650

    votes_loaded: Counter[str] = Counter()
    for d in night2024.declarations:
        for c in d.candidates:
            votes_loaded[c.party] += c.votes
    seats_won_loaded = Counter(winner(d).party for d in night2024.declarations)

    assert votes_loaded == votes_csv
    assert sum(votes_loaded.values()) == sum(int(r["Valid votes"]) for r in seats_csv)
    assert seats_won_loaded == seats_won_csv


def test_2024_seat_details_and_baseline(night2024, seats_csv):
    by_id = {r["ONS ID"]: r for r in seats_csv}
    for d in night2024.declarations:
        r = by_id[d.ons_id]
        assert d.constituency == r["Constituency name"]
        assert d.nation == r["Country name"]
        assert d.electorate == int(r["Electorate"])
        assert d.invalid_votes == int(r["Invalid votes"])
        assert winner(d).party == r["First party"]
    held = {s.ons_id: s.held_by for s in night2024.opened.seats}
    assert held == {i: held_from_result(r["Result"]) for i, r in by_id.items()}


# --- held_before ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "result, held",
    [
        ("Lab gain from Con", "Con"),
        ("SNP hold", "SNP"),
        ("Ind gain from Lab", "Lab"),
        ("Lab Coop hold", "Lab"),
        ("Alliance gain from DUP", "DUP"),
        ("Alliance hold", "APNI"),
        ("Con gain from Lab Coop", "Lab"),
        ("  lab   gain   FROM   Con  ", "Con"),
        ("Spk hold", "Spk"),
    ],
)
def test_held_before(result, held):
    assert held_before(result) == held


@pytest.mark.parametrize(
    "garbage", ["", "garbage", "Lab", "hold", "Lab won", "Lab gain", "Lab gain from", "gain from Con", None]
)
def test_held_before_garbage_is_none(garbage):
    assert held_before(garbage) is None


# --- write_baseline ------------------------------------------------------------------------------


def test_write_baseline_on_a_copy_of_2024(tmp_path, seats_csv):
    night_dir = tmp_path / "ge2024"
    shutil.copytree(GE2024, night_dir, ignore=shutil.ignore_patterns("baseline.csv"))
    assert not (night_dir / "baseline.csv").exists()

    out = write_baseline(night_dir)

    assert out == night_dir / "baseline.csv"
    with out.open(encoding="utf-8", newline="") as handle:
        raw = list(csv.reader(handle))
    assert raw[0] == [
        "ons_id",
        "constituency",
        "held_by",
        "previous_turnout",
        "previous_valid_votes",
        "previous_shares",
    ]
    written = read_csv(out)
    assert len(written) == 650
    expected = {r["ONS ID"]: (r["Constituency name"], held_from_result(r["Result"])) for r in seats_csv}
    assert {w["ons_id"]: (w["constituency"], w["held_by"]) for w in written} == expected

    shipped = GE2024 / "baseline.csv"
    if shipped.is_file():
        assert written == read_csv(shipped)
    else:
        derived = derive_baseline(GE2024)
        assert [(w["ons_id"], w["constituency"], w["held_by"]) for w in written] == [
            (s.ons_id, s.constituency, s.held_by) for s in derived
        ]

    # The night loaded with that baseline: a seat is a gain where the winner is not who held it.
    night = load_night(night_dir)
    assert night.election == "ge2024"
    held = {s.ons_id: s.held_by for s in night.opened.seats}
    assert held == {i: h for i, (_, h) in expected.items()}
    gains = sum(1 for d in night.declarations if winner(d).party != held[d.ons_id])
    assert gains == sum(1 for r in seats_csv if "gain" in r["Result"])


def test_shipped_baseline_matches_derived_if_present():
    shipped = GE2024 / "baseline.csv"
    if not shipped.is_file():
        pytest.skip("data/ge2024/baseline.csv not committed yet")
    rows = read_csv(shipped)
    assert [(r["ons_id"], r["constituency"], r["held_by"]) for r in rows] == [
        (s.ons_id, s.constituency, s.held_by) for s in derive_baseline(GE2024)
    ]


# --- a small snake_case night (2017-2019 header style), BOM + CRLF --------------------------------

CANDIDATE_HEADER = (
    "ons_id,ons_region_id,constituency_name,county_name,region_name,country_name,constituency_type,"
    "party_name,party_abbreviation,firstname,surname,gender,sitting_mp,former_mp,votes,share,change"
).split(",")
SEAT_HEADER = (
    "ons_id,ons_region_id,constituency_name,county_name,region_name,country_name,constituency_type,"
    "declaration_time,result,first_party,second_party,electorate,valid_votes,invalid_votes,majority"
).split(",")

ALPHA, BETA, GAMMA = "E14000001", "W07000002", "S14000003"
PLACES = {
    ALPHA: ("E12000001", "Alpha North", "Tyne and Wear", "North East", "England", "Borough"),
    BETA: ("W92000004", "Beta Vale, East", "", "Wales", "Wales", "County"),
    GAMMA: ("S92000003", "Gamma Firth", "", "Scotland", "Scotland", "County"),
}
# (ons_id, party_name, party_abbreviation, firstname, surname, gender, sitting, former, votes)
CANDIDATES = [
    (ALPHA, "Labour and Co-operative", "Lab Coop", "Ann", "Smith", "Female", "Yes", "Yes", 20000),
    (ALPHA, "Conservative", "Con", "Bob", "Jones", "Male", "No", "No", 15000),
    (ALPHA, "Independent", "Ind", "Cara", "Doe", "Female", "No", "No", 3000),
    (ALPHA, "Independent", "Ind", "Dan", "Roe", "Male", "No", "No", 2000),
    (BETA, "Conservative", "Con", "Eve", "Hughes", "Female", "No", "No", 18000),
    (BETA, "Labour", "Lab", "Fred", "Price", "Male", "Yes", "Yes", 17000),
    (BETA, "Plaid Cymru", "PC", "Gwen", "Jenkins", "Female", "No", "No", 4000),
    (GAMMA, "Scottish National Party", "SNP", "Hamish", "Reid", "Male", "Yes", "Yes", 25000),
    (GAMMA, "Liberal Democrat", "LD", "Iona", "Ross", "Female", "No", "No", 9000),
]
# ons_id -> (declaration_time, result, first, second, electorate, invalid)
SEATS = {
    ALPHA: ("13/12/2019 02:00", "Lab Coop hold", "Lab", "Con", 70000, 100),
    BETA: ("12/12/2019 23:45", "Con gain from Lab", "Con", "Lab", 60000, 80),
    GAMMA: ("13/12/2019 04:30", "SNP hold", "SNP", "LD", 65000, 90),
}


def candidate_rows() -> list[list[str]]:
    rows = []
    totals: dict[str, int] = defaultdict(int)
    for ons_id, *_, votes in CANDIDATES:
        totals[ons_id] += votes
    for ons_id, pname, abbr, first, last, gender, sitting, former, votes in CANDIDATES:
        region_id, name, county, region, country, kind = PLACES[ons_id]
        share = f"{votes / totals[ons_id]:.4f}"
        rows.append(
            [
                ons_id,
                region_id,
                name,
                county,
                region,
                country,
                kind,
                pname,
                abbr,
                first,
                last,
                gender,
                sitting,
                former,
                str(votes),
                share,
                "",
            ]
        )
    return rows


def seat_rows() -> list[list[str]]:
    rows = []
    for ons_id, (when, result, first, second, electorate, invalid) in SEATS.items():
        region_id, name, county, region, country, kind = PLACES[ons_id]
        votes = sorted((c[-1] for c in CANDIDATES if c[0] == ons_id), reverse=True)
        rows.append(
            [
                ons_id,
                region_id,
                name,
                county,
                region,
                country,
                kind,
                when,
                result,
                first,
                second,
                str(electorate),
                str(sum(votes)),
                str(invalid),
                str(votes[0] - votes[1]),
            ]
        )
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    # utf-8-sig writes a BOM; the Library's files come with Windows line endings.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_night(
    directory: Path, *, seats=None, candidates=None, seat_header=SEAT_HEADER, candidate_header=CANDIDATE_HEADER
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_csv(directory / "constituencies.csv", seat_header, seat_rows() if seats is None else seats)
    write_csv(directory / "candidates.csv", candidate_header, candidate_rows() if candidates is None else candidates)
    return directory


@pytest.fixture
def snake_dir(tmp_path) -> Path:
    return write_night(tmp_path / "ge2019")


def test_snake_night_files_really_have_bom_and_crlf(snake_dir):
    for name in ("candidates.csv", "constituencies.csv"):
        raw = (snake_dir / name).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbfons_id,")
        assert raw.count(b"\r\n") == raw.count(b"\n") > 3


def test_snake_night_loads(snake_dir):
    night = load_night(snake_dir)

    assert night.election == "ge2019"
    assert night.total_seats == 3
    assert night.flaws == []
    # sorted by declaration time, not file order
    assert [d.ons_id for d in night.declarations] == [BETA, ALPHA, GAMMA]
    by_id = {d.ons_id: d for d in night.declarations}

    alpha = by_id[ALPHA]
    assert alpha.constituency == "Alpha North"
    assert alpha.nation == "England" and alpha.region == "North East"
    assert alpha.electorate == 70000 and alpha.invalid_votes == 100
    assert alpha.valid_votes == 40000
    assert [(c.name, c.party, c.votes) for c in alpha.candidates] == [
        ("Ann Smith", "Lab", 20000),
        ("Bob Jones", "Con", 15000),
        ("Cara Doe", "Ind", 3000),
        ("Dan Roe", "Ind", 2000),
    ]
    win = winner(alpha)
    assert (win.name, win.party, win.party_name) == ("Ann Smith", "Lab", "Labour and Co-operative")
    assert win.sitting_mp is True and win.former_mp is True
    # two independents: two candidates, never pooled into one "Ind"
    independents = [c for c in alpha.candidates if c.is_independent]
    assert len(independents) == 2
    assert {c.identity for c in independents} == {("Ind", "cara doe"), ("Ind", "dan roe")}

    beta = by_id[BETA]
    assert beta.constituency == "Beta Vale, East"  # a quoted comma survives
    assert (winner(beta).name, winner(beta).party, winner(beta).votes) == ("Eve Hughes", "Con", 18000)
    assert beta.valid_votes == 39000 and beta.nation == "Wales"

    gamma = by_id[GAMMA]
    assert (winner(gamma).party, gamma.valid_votes, len(gamma.candidates)) == ("SNP", 34000, 2)

    held = {s.ons_id: s.held_by for s in night.opened.seats}
    assert held == {ALPHA: "Lab", BETA: "Lab", GAMMA: "SNP"}


def test_snake_night_times_are_uk_local_gmt_in_december(snake_dir):
    night = load_night(snake_dir)
    by_id = {d.ons_id: d for d in night.declarations}
    alpha = by_id[ALPHA].declared_at
    assert alpha == datetime(2019, 12, 13, 2, 0, tzinfo=GMT)
    assert offset(alpha) == timedelta(0)
    assert alpha.isoformat() == "2019-12-13T02:00:00+00:00"
    assert tz_key(alpha) == "Europe/London"
    assert by_id[BETA].declared_at == datetime(2019, 12, 12, 23, 45, tzinfo=GMT)
    assert night.opened.opened_at == datetime(2019, 12, 12, 23, 45, tzinfo=GMT)
    assert all(offset(d.declared_at) == timedelta(0) for d in night.declarations)


def test_snake_night_summer_times_are_bst(tmp_path):
    seats = seat_rows()
    when = iter(["09/06/2017 02:00", "08/06/2017 23:45", "09/06/2017 04:30"])
    for row in seats:
        row[7] = next(when)
    night = load_night(write_night(tmp_path / "ge2017", seats=seats))
    by_id = {d.ons_id: d for d in night.declarations}
    assert by_id[ALPHA].declared_at.isoformat() == "2017-06-09T02:00:00+01:00"
    assert by_id[ALPHA].declared_at == datetime(2017, 6, 9, 1, 0, tzinfo=UTC)


def test_an_expected_declaration_time_column_gives_each_seat_its_expected_time(tmp_path):
    seats = seat_rows()
    expected = ["09/06/2017 01:30", "", "2017-06-09T03:00"]
    for row, when in zip(seats, expected):
        row.append(when)
    night = load_night(write_night(tmp_path / "ge2017", seats=seats, seat_header=[*SEAT_HEADER, "expected_time"]))
    times = [s.expected_at.isoformat() if s.expected_at else None for s in night.opened.seats]
    assert times == ["2017-06-09T01:30:00+01:00", None, "2017-06-09T03:00:00+01:00"]
    assert all(s.expected_at is None for s in load_night(write_night(tmp_path / "ge2019")).opened.seats)


# --- bad rows ------------------------------------------------------------------------------------


def _set_votes(value: str, line: int):
    def mutate(seats, candidates):
        candidates[line - 2][14] = value

    return mutate


def _set_time(value: str, line: int):
    def mutate(seats, candidates):
        seats[line - 2][7] = value

    return mutate


def _unknown_seat(seats, candidates):
    candidates[4][0] = "E14000999"  # candidate line 6


def _seat_without_candidates(seats, candidates):
    seats.append(
        [
            "E14000777",
            "E12000001",
            "Delta Moor",
            "",
            "North East",
            "England",
            "County",
            "13/12/2019 03:00",
            "Con hold",
            "Con",
            "Lab",
            "50000",
            "0",
            "0",
            "0",
        ]
    )  # line 5


@pytest.mark.parametrize(
    "mutate, file, line, field, detail",
    [
        (_set_votes("12a", 3), "candidates.csv", 3, "votes", "'12a'"),
        (_set_votes("-5", 4), "candidates.csv", 4, "votes", "negative"),
        (_set_time("31/13/2019 25:00", 3), "constituencies.csv", 3, "declaration_time", "31/13/2019 25:00"),
        (_set_time("", 2), "constituencies.csv", 2, "declaration_time", "empty"),
        (_set_time("   ", 4), "constituencies.csv", 4, "declaration_time", "empty"),
        (_unknown_seat, "candidates.csv", 6, "ons_id", "E14000999"),
        (_seat_without_candidates, "constituencies.csv", 5, "ons_id", "E14000777"),
    ],
    ids=["votes-12a", "votes-negative", "bad-time", "empty-time", "blank-time", "unknown-seat", "no-candidates"],
)
def test_bad_rows_name_file_line_and_field(tmp_path, mutate, file, line, field, detail):
    seats, candidates = seat_rows(), candidate_rows()
    mutate(seats, candidates)
    night_dir = write_night(tmp_path / "bad", seats=seats, candidates=candidates)
    with pytest.raises(NightFormatError) as info:
        load_night(night_dir)
    error = info.value
    assert (error.path.name, error.line, error.field) == (file, line, field)
    message = str(error)
    assert message.startswith(f"{file} line {line}, field '{field}'")
    assert detail in message


@pytest.mark.parametrize(
    "which, column",
    [
        ("candidates", "votes"),
        ("candidates", "party_abbreviation"),
        ("candidates", "ons_id"),
        ("seats", "declaration_time"),
        ("seats", "constituency_name"),
    ],
)
def test_missing_required_column(tmp_path, which, column):
    seat_header, seats = list(SEAT_HEADER), seat_rows()
    cand_header, cands = list(CANDIDATE_HEADER), candidate_rows()
    header, rows, file = (
        (cand_header, cands, "candidates.csv") if which == "candidates" else (seat_header, seats, "constituencies.csv")
    )
    i = header.index(column)
    del header[i]
    for row in rows:
        del row[i]
    night_dir = write_night(
        tmp_path / "bad", seats=seats, candidates=cands, seat_header=seat_header, candidate_header=cand_header
    )
    with pytest.raises(NightFormatError) as info:
        load_night(night_dir)
    assert (info.value.path.name, info.value.line, info.value.field) == (file, 1, column)
    assert str(info.value).startswith(f"{file} line 1, field '{column}'")
    assert "missing" in str(info.value)


def test_title_case_error_names_the_published_header(tmp_path):
    night_dir = tmp_path / "ge2024"
    shutil.copytree(GE2024, night_dir, ignore=shutil.ignore_patterns("baseline.csv"))
    path = night_dir / "candidates.csv"
    lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    cells = lines[2].split(",")
    votes_at = lines[0].split(",").index("Votes")
    cells[votes_at] = "12a"
    lines[2] = ",".join(cells)
    path.chmod(0o644)
    path.write_text("".join(lines), encoding="utf-8-sig")
    with pytest.raises(NightFormatError) as info:
        load_night(night_dir)
    assert str(info.value).startswith("candidates.csv line 3, field 'Votes'")


# --- a flawed aggregate keeps the seat -----------------------------------------------------------


def test_valid_votes_disagreeing_with_candidates_is_a_flaw_not_a_drop(tmp_path):
    seats = seat_rows()
    assert seats[0][0] == ALPHA and seats[0][12] == "40000"
    seats[0][12] = "40123"
    night = load_night(write_night(tmp_path / "flawed", seats=seats))

    assert len(night.declarations) == 3
    alpha = next(d for d in night.declarations if d.ons_id == ALPHA)
    assert alpha.valid_votes == 40000 == alpha.candidate_votes
    assert len(alpha.flaws) == 1
    assert "40123" in alpha.flaws[0] and "40000" in alpha.flaws[0] and "valid votes" in alpha.flaws[0]
    assert len(night.flaws) == 1
    assert "Alpha North" in night.flaws[0] and ALPHA in night.flaws[0] and "40123" in night.flaws[0]
    assert all(d.flaws == [] for d in night.declarations if d.ons_id != ALPHA)


# --- election ids --------------------------------------------------------------------------------


def test_election_id_is_the_directory_name(snake_dir, monkeypatch):
    assert election_id_for(GE2024) == "ge2024"
    assert election_id_for(snake_dir) == "ge2019"
    monkeypatch.chdir(snake_dir)
    assert election_id_for(Path(".")) == "ge2019"  # resolved, not "."
    night = load_night(".")
    assert night.election == "ge2019"


def test_election_override(snake_dir):
    night = load_night(snake_dir, election="x")
    assert night.election == "x"
    assert night.opened.election == "x" and night.opened.title == "x"
    assert {d.election for d in night.declarations} == {"x"}


# --- edge cases of the files themselves -------------------------------------------------------


def test_duplicate_seat_row_is_a_night_format_error(tmp_path):
    seats = seat_rows()
    seats.append(list(seats[0]))  # Alpha North again, line 5
    night_dir = write_night(tmp_path / "bad", seats=seats)
    with pytest.raises(NightFormatError) as info:
        load_night(night_dir)
    assert (info.value.path.name, info.value.line, info.value.field) == ("constituencies.csv", 5, "ons_id")


def test_malformed_ons_id_is_a_night_format_error(tmp_path):
    seats, candidates = seat_rows(), candidate_rows()
    seats[1][0] = "W0700002"  # one digit short; line 3
    for row in candidates:
        if row[0] == BETA:
            row[0] = "W0700002"
    night_dir = write_night(tmp_path / "bad", seats=seats, candidates=candidates)
    with pytest.raises(NightFormatError) as info:
        load_night(night_dir)
    assert (info.value.path.name, info.value.line, info.value.field) == ("constituencies.csv", 3, "ons_id")
    with pytest.raises(NightFormatError):
        write_baseline(night_dir)


def test_night_without_seats_is_a_night_format_error(tmp_path):
    night_dir = write_night(tmp_path / "empty", seats=[], candidates=[])
    with pytest.raises(NightFormatError) as info:
        load_night(night_dir)
    assert info.value.path.name == "constituencies.csv"


def test_line_numbers_are_file_lines_after_a_multiline_cell(tmp_path):
    candidates = candidate_rows()
    candidates[0][2] = "Alpha\nNorth"  # record 1 spans file lines 2-3
    candidates[2][14] = "12a"  # record 3 starts on file line 5
    night_dir = write_night(tmp_path / "bad", candidates=candidates)
    with pytest.raises(NightFormatError) as info:
        load_night(night_dir)
    assert info.value.line == 5
    assert str(info.value).startswith("candidates.csv line 5, field 'votes'")


# --- the 2019 night, the Library's files as published ---------------------------------------------

GE2019 = GE2024.parent / "ge2019"


def test_2019_night_loads_with_its_one_flaw_flagged():
    night = load_night(GE2019)
    assert len(night.declarations) == 650 and sum(len(d.candidates) for d in night.declarations) == 3320
    assert [f.split(":")[0] for f in night.flaws] == ["Meon Valley (E14000811)"]
    won = Counter(winner(d).party for d in night.declarations)
    assert won == dict(Con=365, Lab=202, SNP=48, LD=11, DUP=8, SF=7, PC=4, SDLP=2, Green=1, APNI=1, Spk=1)
    assert night.declarations[0].constituency == "Newcastle Upon Tyne Central"
    assert night.declarations[-1].constituency == "St Ives"
    shipped = read_csv(GE2019 / "baseline.csv")
    assert [(r["ons_id"], r["held_by"]) for r in shipped] == [(s.ons_id, s.held_by) for s in derive_baseline(GE2019)]
