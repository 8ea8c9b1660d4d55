"""Honest errors with nothing running: the election picker's rule, what a failure amounts to in one
line, every option's validation, and every --help stating its defaults."""

from __future__ import annotations

import pytest
import redis
import typer
from kafka.errors import KafkaTimeoutError
from typer.core import TyperOption
from typer.testing import CliRunner

from tallyroom.cli import app
from tallyroom.consumers.reader import ElectionNotFound, choose_election
from tallyroom.lifecycle import (
    AUTH_EXIT_STATUS,
    UNREACHABLE_EXIT_STATUS,
    ServiceUnreachable,
    one_line_failure,
)
from tallyroom.settings import Settings

SETTINGS = Settings(redis_url="redis://:secret@10.1.2.3:6400/2", kafka_bootstrap="10.1.2.3:9999,10.1.2.4:9999")


# --- the picker ------------------------------------------------------------------------------------


def test_the_chosen_election_wins_when_it_is_there():
    assert choose_election("ge2019", ["ge2019", "ge2024"]) == "ge2019"


def test_with_none_chosen_the_only_election_present_is_picked():
    assert choose_election(None, ["ge2024"]) == "ge2024"


def test_an_election_not_there_is_refused_listing_those_that_are():
    with pytest.raises(ElectionNotFound) as refused:
        choose_election("nosuch", ["ge2019", "ge2024"])
    assert str(refused.value) == "no election 'nosuch' in Redis; elections in Redis: ge2019, ge2024"
    assert refused.value.exit_status == 2 and "\n" not in str(refused.value)


def test_several_present_and_none_chosen_asks_for_one():
    with pytest.raises(ElectionNotFound, match="choose one with --election or TALLYROOM_ELECTION.*ge2019, ge2024"):
        choose_election(None, ["ge2019", "ge2024"])


def test_none_present_says_so():
    with pytest.raises(ElectionNotFound, match="no election to show; elections in Redis: none yet"):
        choose_election(None, [])


# --- one line per failure ----------------------------------------------------------------------------


def test_redis_not_answering_is_one_line_naming_address_and_setting_never_the_password():
    failure = one_line_failure(redis.ConnectionError("Error 111 connecting"), SETTINGS)
    assert isinstance(failure, ServiceUnreachable) and failure.exit_status == UNREACHABLE_EXIT_STATUS
    assert str(failure) == "Redis at 10.1.2.3:6400 is not answering (TALLYROOM_REDIS_URL)"


def test_a_redis_timeout_is_not_answering_too():
    assert "Redis at 10.1.2.3:6400" in str(one_line_failure(redis.TimeoutError("Timeout connecting"), SETTINGS))


def test_kafka_not_answering_is_one_line_naming_the_bootstrap_and_setting():
    failure = one_line_failure(KafkaTimeoutError("Unable to bootstrap from [...]"), SETTINGS)
    assert str(failure) == "Kafka at 10.1.2.3:9999,10.1.2.4:9999 is not answering (TALLYROOM_KAFKA_BOOTSTRAP)"


def test_a_failure_raised_from_another_is_found_through_the_chain():
    try:
        try:
            raise redis.ConnectionError("refused")
        except redis.ConnectionError as exc:
            raise RuntimeError("while reading the tally") from exc
    except RuntimeError as outer:
        assert isinstance(one_line_failure(outer, SETTINGS), ServiceUnreachable)


def test_a_refused_password_keeps_its_own_status_and_a_bug_stays_a_bug():
    refused = one_line_failure(redis.AuthenticationError("WRONGPASS"), SETTINGS)
    assert refused is not None and refused.exit_status == AUTH_EXIT_STATUS
    assert one_line_failure(KeyError("x"), SETTINGS) is None


def test_connect_timeout_bounds_every_client():
    settings = Settings(connect_timeout=2.5)
    assert settings.redis_kwargs()["socket_connect_timeout"] == 2.5
    assert settings.kafka_timeouts() == {"bootstrap_timeout_ms": 2500}


# --- options -----------------------------------------------------------------------------------------

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["replay", "--speed", "0"], "must be more than 0, not 0"),
        (["replay", "--speed", "-2"], "must be more than 0, not -2"),
        (["replay", "--duration", "0"], "must be more than 0"),
        (["replay", "--timeout", "-1"], "must be more than 0"),
        (["replay", "--night", "/no/such/night"], "does not exist"),
        (["replay", "--speed", "2", "--max"], "choose one of --speed, --realtime, --max, --duration"),
        (["run", "--duration", "0"], "must be more than 0"),
        (["night", "--night", "/no/such/night"], "does not exist"),
        (["declare", "/no/such/file.ndjson"], "is not a file"),
        (["declare", "--night", "/no/such/night"], "does not exist"),
        (["web", "--port", "0"], "'--port': Input should be greater than or equal to 1"),
        (["entry", "--port", "70000"], "'--port': Input should be less than or equal to 65535"),
        (["subscribe", "--group", "g", "--count", "0"], "'--count': Input should be greater than or equal to 1"),
        (["bench", "--seats", "0"], "'--seats': Input should be greater than or equal to 1"),
        (["bench", "--rate-seconds", "0"], "must be more than 0"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(args, said):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.replace("│", " ").split())  # the error box, unwrapped
    assert said in flat


def _commands(group, prefix: str = ""):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_option_states_its_default():
    """Shown by typer ([default: ...]) when it is a value, else said in the help text."""
    unstated = []
    for name, cmd in _commands(typer.main.get_command(app)):
        for param in cmd.params:
            if not isinstance(param, TyperOption) or param.hidden or param.name == "help":
                continue
            if param.is_flag:
                continue  # a flag is off unless given
            shown = param.show_default is not False and param.default is not None and param.default != ""
            said = "default" in (param.help or "") or param.required
            if not (shown or said):
                unstated.append(f"{name} {param.opts[0]}")
    assert not unstated, f"options whose --help does not state a default: {unstated}"
