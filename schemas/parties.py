"""The party vocabulary: one canonical abbreviation per party, whatever file it came from,
and the UK time zone the published files keep their times in."""

from __future__ import annotations

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
