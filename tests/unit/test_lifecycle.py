"""The one stop mechanism and the one retry helper, without any service running."""

import asyncio
import os
import signal
import time

import pytest
import redis
from aiokafka.errors import SaslAuthenticationFailed as AIOKafkaSaslFailed
from kafka.errors import SaslAuthenticationFailedError

from tallyroom.lifecycle import AuthenticationFailed, Stop, authentication_failure, retrying, retrying_async


def failing(times: int, error: Exception):
    calls = []

    def action():
        calls.append(1)
        if len(calls) <= times:
            raise error
        return len(calls)

    return action, calls


def test_a_connection_error_is_retried_until_it_succeeds():
    action, calls = failing(2, redis.ConnectionError("gone"))
    assert retrying(action) == 3 and len(calls) == 3


@pytest.mark.parametrize(
    ("error", "setting"),
    [
        (redis.AuthenticationError("WRONGPASS invalid username-password pair"), "TALLYROOM_REDIS_PASSWORD"),
        (redis.AuthenticationError("NOAUTH Authentication required."), "TALLYROOM_REDIS_PASSWORD"),
        (redis.exceptions.NoPermissionError("NOPERM this user has no permissions"), "TALLYROOM_REDIS_USERNAME"),
        (SaslAuthenticationFailedError("invalid credentials"), "TALLYROOM_KAFKA_SASL_PASSWORD"),
        (AIOKafkaSaslFailed("invalid credentials"), "TALLYROOM_KAFKA_SASL_PASSWORD"),
    ],
)
def test_an_authentication_error_is_never_retried(error, setting):
    action, calls = failing(5, error)
    with pytest.raises(AuthenticationFailed) as raised:
        retrying(action)
    assert len(calls) == 1 and setting in str(raised.value)
    with pytest.raises(AuthenticationFailed):
        asyncio.run(retrying_async(lambda: asyncio.sleep(0, result=action())))


def test_other_errors_are_not_retried_or_renamed():
    action, calls = failing(5, redis.ResponseError("WRONGTYPE"))
    with pytest.raises(redis.ResponseError):
        retrying(action)
    assert len(calls) == 1 and authentication_failure(redis.ResponseError("x")) is None


def test_a_stop_ends_the_retries():
    stop = Stop()
    action, calls = failing(1000, redis.ConnectionError("gone"))
    stop.set()
    with pytest.raises(redis.ConnectionError):
        retrying(action, stop)
    assert len(calls) == 1


def test_sigterm_sets_the_stop_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with Stop().on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        started = time.monotonic()
        assert stop.wait(5) and time.monotonic() - started < 1
    assert signal.getsignal(signal.SIGTERM) == before and stop


def test_async_wait_returns_when_stopped():
    stop = Stop()

    async def later():
        await asyncio.sleep(0.05)
        stop.set()

    async def main():
        asyncio.get_running_loop().create_task(later())
        return await stop.wait_async(5)

    assert asyncio.run(main()) is True
    assert asyncio.run(Stop().wait_async(0.05)) is False


@pytest.mark.parametrize(
    ("missing", "setting"),
    [
        ("kafka_sasl_password", "TALLYROOM_KAFKA_SASL_PASSWORD"),
        ("kafka_sasl_username", "TALLYROOM_KAFKA_SASL_USERNAME"),
    ],
)
def test_a_sasl_login_without_its_username_or_password_is_refused_before_connecting(missing, setting):
    from pydantic import SecretStr

    from tallyroom.lifecycle import check_kafka_login
    from tallyroom.settings import Settings

    settings = Settings(
        _env_file=None,
        kafka_bootstrap="127.0.0.1:1",  # nothing listens: the check must not get that far
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="tallyroom",
        kafka_sasl_password=SecretStr("secret"),
    ).model_copy(update={missing: None})
    with pytest.raises(AuthenticationFailed, match=setting):
        check_kafka_login(settings)


def test_the_kafka_login_check_is_a_no_op_without_sasl_and_leaves_an_unreachable_broker_to_the_retries():
    from tallyroom.lifecycle import check_kafka_login
    from tallyroom.settings import Settings

    check_kafka_login(Settings(_env_file=None, kafka_bootstrap="127.0.0.1:1"))
    from pydantic import SecretStr

    check_kafka_login(
        Settings(
            _env_file=None,
            kafka_bootstrap="127.0.0.1:1",
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="tallyroom",
            kafka_sasl_password=SecretStr("secret"),
        )
    )  # no broker there: not a refused password, so no AuthenticationFailed
