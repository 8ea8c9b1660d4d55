"""Every variation of the Library layout a real night has shown, on small files the tests write.

Header style (Title Case 2024, snake_case 2017-2019) in either file, day-first or ISO times with or
without seconds, CRLF or LF, a BOM or none, accents, quoted commas, long labels, the Library's label
aliases; and a flawed row kept and flagged rather than dropped.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tallyroom.producers.nights import NightFormatError, load_night
from tallyroom.schemas.common import LABEL_MAX

TITLE_CANDIDATE = {
    "ons_id": "ONS ID",
    "constituency": "Constituency name",
    "country": "Country name",
    "party_name": "Party name",
    "party": "Party abbreviation",
    "first": "Candidate first name",
    "surname": "Candidate surname",
    "sitting": "Sitting MP",
    "former": "Former MP",
    "votes": "Votes",
    "share": "Share",
    "change": "Change",
}
SNAKE_CANDIDATE = {
    "ons_id": "ons_id",
    "constituency": "constituency_name",
    "country": "country_name",
    "party_name": "party_name",
    "party": "party_abbreviation",
    "first": "firstname",
    "surname": "surname",
    "sitting": "sitting_mp",
    "former": "former_mp",
    "votes": "votes",
    "share": "share",
    "change": "change",
}
TITLE_SEAT = {
    "ons_id": "ONS ID",
    "constituency": "Constituency name",
    "country": "Country name",
    "time": "Declaration time",
    "result": "Result",
    "electorate": "Electorate",
    "valid": "Valid votes",
    "invalid": "Invalid votes",
    "majority": "Majority",
}
SNAKE_SEAT = {
    "ons_id": "ons_id",
    "constituency": "constituency_name",
    "country": "country_name",
    "time": "declaration_time",
    "result": "result",
    "electorate": "electorate",
    "valid": "valid_votes",
    "invalid": "invalid_votes",
    "majority": "majority",
}
STYLES = {"title": (TITLE_CANDIDATE, TITLE_SEAT), "snake": (SNAKE_CANDIDATE, SNAKE_SEAT)}

MON, TOWN = "W07000041", "E14000999"
LONG_PARTY = "Christian Party, Proclaiming Christ's Lordship"  # 46 characters, a comma inside


def candidates() -> list[dict]:
    return [
        # (the candidate file spells the seat without its accent, as the Library's 2019 file does)
        dict(ons_id=MON, constituency="Ynys Mon", country="Wales", party_name="Plaid Cymru", party="PC",
             first="Aled", surname="ap Dafydd", sitting="No", former="No", votes="10000"),
        dict(ons_id=MON, constituency="Ynys Mon", country="Wales", party_name="Labour and Co-operative",
             party="Lab Coop", first="Mary", surname="Jones", sitting="Yes", former="Yes", votes="12000"),
        dict(ons_id=MON, constituency="Ynys Mon", country="Wales", party_name="Brexit Party", party="Brexit",
             first="Siân", surname="Ó Briain", sitting="No", former="No", votes="2000"),
        dict(ons_id=TOWN, constituency="Town, North", country="England", party_name="Alliance", party="Alliance",
             first="Zoë", surname="Müller", sitting="No", former="No", votes="1,234"),
        dict(ons_id=TOWN, constituency="Town, North", country="England", party_name=LONG_PARTY, party=LONG_PARTY,
             first="Dan", surname="Smith", sitting="No", former="No", votes="999"),
    ]  # fmt: skip


def seats(time_mon: str = "13/12/2019 02:30", time_town: str = "12/12/2019 23:59") -> list[dict]:
    return [
        dict(ons_id=MON, constituency="Ynys Môn", country="Wales", time=time_mon, result="Lab Coop hold",
             electorate="50000", valid="24000", invalid="50", majority="2000"),
        dict(ons_id=TOWN, constituency="Town, North", country="England", time=time_town,
             result="Alliance gain from Brexit", electorate="", valid="2233", invalid="", majority="235"),
    ]  # fmt: skip


def write(path: Path, columns: dict, rows: list[dict], *, bom: bool, crlf: bool) -> None:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n" if crlf else "\n")
        writer.writerow(columns.values())
        for row in rows:
            writer.writerow([row.get(key, "") for key in columns])


def write_night(
    directory: Path,
    *,
    candidate_style: str = "snake",
    seat_style: str = "title",
    bom: bool = True,
    crlf: bool = True,
    seat_rows: list[dict] | None = None,
    candidate_rows: list[dict] | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write(directory / "candidates.csv", STYLES[candidate_style][0], candidate_rows or candidates(), bom=bom, crlf=crlf)
    write(directory / "constituencies.csv", STYLES[seat_style][1], seat_rows or seats(), bom=bom, crlf=crlf)
    return directory


def by_id(night):
    return {d.ons_id: d for d in night.declarations}


@pytest.mark.parametrize("candidate_style", ["title", "snake"])
@pytest.mark.parametrize("seat_style", ["title", "snake"])
@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
@pytest.mark.parametrize("crlf", [True, False], ids=["crlf", "lf"])
def test_every_header_style_and_encoding_reads_the_same_night(tmp_path, candidate_style, seat_style, bom, crlf):
    directory = write_night(
        tmp_path / "ge2019", candidate_style=candidate_style, seat_style=seat_style, bom=bom, crlf=crlf
    )
    raw = (directory / "candidates.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == bom and (b"\r\n" in raw) == crlf
    night = load_night(directory)
    seat = by_id(night)
    mon, town = seat[MON], seat[TOWN]
    assert mon.constituency == "Ynys Môn"  # the constituency file's name, accent kept
    assert [(c.name, c.party, c.votes) for c in mon.candidates] == [
        ("Aled ap Dafydd", "PC", 10000),
        ("Mary Jones", "Lab", 12000),  # "Lab Coop" is Labour
        ("Siân Ó Briain", "BRX", 2000),  # "Brexit" in one file is "BRX" in the other
    ]
    assert mon.electorate == 50000 and mon.invalid_votes == 50 and mon.nation == "Wales"
    assert town.constituency == "Town, North"  # a quoted comma
    assert [(c.name, c.party, c.votes) for c in town.candidates] == [
        ("Zoë Müller", "APNI", 1234),  # "Alliance" is APNI; a thousands separator is read
        ("Dan Smith", LONG_PARTY, 999),  # a 46-character abbreviation with a comma, whole
    ]
    assert town.electorate is None
    held = {s.ons_id: s.held_by for s in night.opened.seats}
    assert held == {MON: "Lab", TOWN: "BRX"}
    assert night.flaws == []


@pytest.mark.parametrize(
    "published, expected",
    [
        ("13/12/2019 02:30", datetime(2019, 12, 13, 2, 30, tzinfo=UTC)),
        ("13/12/2019 02:30:15", datetime(2019, 12, 13, 2, 30, 15, tzinfo=UTC)),
        ("2019-12-13 02:30", datetime(2019, 12, 13, 2, 30, tzinfo=UTC)),
        ("2019-12-13T02:30", datetime(2019, 12, 13, 2, 30, tzinfo=UTC)),
        ("2019-12-13T02:30:15", datetime(2019, 12, 13, 2, 30, 15, tzinfo=UTC)),
        ("2019-12-13 02:30:15", datetime(2019, 12, 13, 2, 30, 15, tzinfo=UTC)),
        # summer: UK local time is BST
        ("05/07/2024 04:07", datetime(2024, 7, 5, 3, 7, tzinfo=UTC)),
        ("2024-07-05T04:07:00", datetime(2024, 7, 5, 3, 7, tzinfo=UTC)),
        # an explicit offset is taken as it stands
        ("2024-07-05T04:07:00+01:00", datetime(2024, 7, 5, 3, 7, tzinfo=UTC)),
        ("2024-07-05T03:07:00Z", datetime(2024, 7, 5, 3, 7, tzinfo=UTC)),
    ],
)
def test_declaration_times_day_first_or_iso_with_or_without_seconds(tmp_path, published, expected):
    night = load_night(write_night(tmp_path / "n", seat_rows=seats(time_mon=published)))
    declared = by_id(night)[MON].declared_at
    assert declared == expected
    assert declared.utcoffset() is not None


def test_local_times_carry_the_uk_offset(tmp_path):
    night = load_night(write_night(tmp_path / "n", seat_rows=seats(time_mon="2024-07-05 04:07")))
    assert by_id(night)[MON].declared_at.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("bad", ["13/13/2019 02:30", "2019-12-13T25:00", "soon", "02:30"])
def test_an_unreadable_time_names_file_line_and_field(tmp_path, bad):
    directory = write_night(tmp_path / "n", seat_rows=seats(time_town=bad))
    with pytest.raises(NightFormatError) as info:
        load_night(directory)
    assert (info.value.path.name, info.value.line, info.value.field) == ("constituencies.csv", 3, "Declaration time")
    assert bad in str(info.value)


@pytest.mark.parametrize("column", ["party", "party_name", "surname"])
def test_a_label_over_the_bound_is_kept_cut_and_flagged(tmp_path, column):
    rows = candidates()
    rows[4][column] = "X" * (LABEL_MAX + 50)
    night = load_night(write_night(tmp_path / "n", candidate_rows=rows))
    town = by_id(night)[TOWN]
    assert len(town.candidates) == 2  # the seat and the candidate are kept
    cut = town.candidates[1]
    assert max(len(cut.name), len(cut.party), len(cut.party_name or "")) == LABEL_MAX
    assert len(town.flaws) == 1 and "candidates.csv line 6" in town.flaws[0] and f"cut to {LABEL_MAX}" in town.flaws[0]
    assert any("Town, North" in flaw for flaw in night.flaws)


def test_a_long_constituency_name_is_kept_cut_and_flagged(tmp_path):
    rows = seats()
    rows[1]["constituency"] = "Town " * 60
    night = load_night(write_night(tmp_path / "n", seat_rows=rows))
    town = by_id(night)[TOWN]
    assert len(town.constituency) <= LABEL_MAX and town.constituency.startswith("Town Town")
    assert "constituencies.csv line 3: constituency name" in town.flaws[0]


def test_flawed_aggregates_keep_the_seat_and_two_sitting_mps_are_no_flaw(tmp_path):
    rows = seats()
    rows[0]["valid"], rows[0]["majority"] = "24001", "1999"
    people = candidates()
    people[0]["sitting"] = "Yes"  # two candidates flagged as sitting MPs (real when an MP moves seat)
    night = load_night(write_night(tmp_path / "n", seat_rows=rows, candidate_rows=people))
    mon = by_id(night)[MON]
    assert mon.valid_votes == 24000 and len(mon.candidates) == 3
    assert len(mon.flaws) == 2
    assert "valid votes 24001" in mon.flaws[0] and "majority 1999" in mon.flaws[1]
    assert [c.name for c in mon.candidates if c.sitting_mp] == ["Aled ap Dafydd", "Mary Jones"]


def test_a_vote_count_that_cannot_be_read_names_file_line_and_field(tmp_path):
    people = candidates()
    people[3]["votes"] = "many"
    directory = write_night(tmp_path / "n", candidate_rows=people, candidate_style="title")
    with pytest.raises(NightFormatError) as info:
        load_night(directory)
    assert str(info.value).startswith("candidates.csv line 5, field 'Votes': 'many' is not a whole number")


def test_a_long_region_is_kept_cut_and_flagged(tmp_path):
    people = candidates()
    rows = seats()
    directory = write_night(tmp_path / "n", seat_rows=rows, candidate_rows=people, seat_style="snake")
    path = directory / "constituencies.csv"
    text = path.read_text(encoding="utf-8-sig").replace(",Wales,", "," + "W" * 300 + ",", 1)
    path.write_text(text, encoding="utf-8-sig")
    mon = by_id(load_night(directory))[MON]
    assert mon.nation == "W" * LABEL_MAX and "country name of 300 characters" in mon.flaws[0]


def test_a_directory_name_that_is_no_election_id_says_to_pass_one(tmp_path):
    directory = write_night(tmp_path / "general election 2019")
    with pytest.raises(ValueError, match="pass --election"):
        load_night(directory)
    assert load_night(directory, election="ge2019").election == "ge2019"


def test_the_2024_night_rewritten_in_the_other_style_reads_the_same(tmp_path):
    """The real files in snake_case, LF, no BOM, ISO times with seconds: the same night, seat for seat."""
    source = Path(__file__).resolve().parents[2] / "data" / "ge2024"
    target = tmp_path / "ge2024"
    target.mkdir()
    for name in ("candidates.csv", "constituencies.csv"):
        with (source / name).open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
        header = [re.sub(r"[^a-z0-9]+", "_", h.casefold()).strip("_") for h in rows[0]]
        when = header.index("declaration_time") if "declaration_time" in header else None
        with (target / name).open("w", encoding="utf-8", newline="") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow(header)
            for row in rows[1:]:
                if when is not None:
                    row[when] = datetime.strptime(row[when], "%d/%m/%Y %H:%M").strftime("%Y-%m-%dT%H:%M:%S")
                out.writerow(row)
    original, rewritten = load_night(source), load_night(target)
    assert rewritten.opened == original.opened
    assert rewritten.declarations == original.declarations
