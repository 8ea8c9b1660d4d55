"""The party vocabulary: one canonical abbreviation per party, whatever file it came from,
each party's full name and colour, and the UK time zone the published files keep their times in."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

INDEPENDENT = "Ind"
UK = ZoneInfo("Europe/London")

# Published files label the same party differently (the Library's own files
# disagree between years). Keys are compared case-insensitively.
PARTY_ALIASES: dict[str, str] = {
    "lab coop": "Lab",
    "lab co-op": "Lab",
    "labour and co-operative": "Lab",
    "labour": "Lab",
    "alliance": "APNI",
    "conservative": "Con",
    "liberal democrat": "LD",
    "lib dem": "LD",
    "green party": "Green",
    "grn": "Green",
    "reform uk": "RUK",
    "brexit": "BRX",
    "brexit party": "BRX",
    "the brexit party": "BRX",
    "sinn fein": "SF",
    "sinn féin": "SF",
    "scottish national party": "SNP",
    "democratic unionist party": "DUP",
    "ulster unionist party": "UUP",
    "social democratic and labour party": "SDLP",
    "plaid cymru": "PC",
    "independent": INDEPENDENT,
    "speaker": "Spk",
}


# A party renamed between elections, by its new abbreviation: its share last time is
# its predecessor's (the Library's own Change column compares Reform UK with the
# Brexit Party's 2019 result).
PARTY_PREDECESSORS: dict[str, str] = {"RUK": "BRX"}


def canonical_party(label: str, aliases: dict[str, str] | None = None) -> str:
    """Map a published party label to its canonical abbreviation."""
    cleaned = " ".join(label.split())
    table = PARTY_ALIASES if aliases is None else aliases
    return table.get(cleaned.casefold(), cleaned)


@dataclass(frozen=True)
class Party:
    name: str
    colour: str  # hex, for the web page and the terminal alike


UNKNOWN_COLOUR = "#9e9e9e"  # a party not listed below is drawn grey

# Broadcasters' customary colours, keyed by canonical abbreviation.
PARTIES: dict[str, Party] = {
    "Lab": Party("Labour", "#e4003b"),
    "Con": Party("Conservative", "#0087dc"),
    "LD": Party("Liberal Democrats", "#faa61a"),
    "SNP": Party("Scottish National Party", "#fdf38e"),
    "Green": Party("Green Party", "#6ab023"),
    "RUK": Party("Reform UK", "#12b6cf"),
    "PC": Party("Plaid Cymru", "#00815b"),
    "SF": Party("Sinn Féin", "#326760"),
    "DUP": Party("Democratic Unionist Party", "#d46a4c"),
    "SDLP": Party("Social Democratic and Labour Party", "#2aa82c"),
    "UUP": Party("Ulster Unionist Party", "#48a5ee"),
    "APNI": Party("Alliance Party", "#f6cb2f"),
    "TUV": Party("Traditional Unionist Voice", "#6f8fc9"),
    "Spk": Party("Speaker", "#b2b2b2"),
    INDEPENDENT: Party("Independent", UNKNOWN_COLOUR),
}


def party_colour(party: str) -> str:
    known = PARTIES.get(party)
    return known.colour if known else UNKNOWN_COLOUR


def party_name(party: str) -> str:
    """The full name, or the label itself for a party not listed."""
    known = PARTIES.get(party)
    return known.name if known else party
