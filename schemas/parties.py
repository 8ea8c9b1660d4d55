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
    "plaid cymru": "PC",
    "independent": INDEPENDENT,
    "speaker": "Spk",
}


def canonical_party(label: str, aliases: dict[str, str] | None = None) -> str:
    """Map a published party label to its canonical abbreviation."""
    cleaned = " ".join(label.split())
    table = PARTY_ALIASES if aliases is None else aliases
    return table.get(cleaned.casefold(), cleaned)
