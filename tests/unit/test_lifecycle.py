"""The one stop mechanism and the one retry helper, without any service running."""

import asyncio
import os
import signal
import time

import aiokafka.errors as aiokafka_errors
import kafka.errors as kafka_errors
import pytest
import redis
from aiokafka.errors import NodeNotReadyError as AIOKafkaNodeNotReady
from aiokafka.errors import SaslAuthenticationFailed as AIOKafkaSaslFailed
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException as RdKafkaException
from kafka.errors import SaslAuthenticationFailedError

from tallyroom.lifecycle import (
    AUTH_EXIT_STATUS,
    UNREACHABLE_EXIT_STATUS,
    AuthenticationFailed,
    ServiceUnreachable,
    Stop,
    authentication_failure,
    kafka_transient,
    one_line_failure,
    raise_if_cancelled,
    redis_transient,
    retrying,
    retrying_async,
)
from tallyroom.settings import Settings


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
        (
            RdKafkaException(RdKafkaError(RdKafkaError.SASL_AUTHENTICATION_FAILED, "invalid credentials")),
            "TALLYROOM_KAFKA_SASL_PASSWORD",
        ),
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


# ------------------------------------------------------------------ transient errors, deadlines


@pytest.mark.parametrize(
    "error",
    [
        AIOKafkaNodeNotReady("Attempt to send a request to node which is not ready (node id 1)."),
        aiokafka_errors.KafkaConnectionError("Unable to connect"),
        aiokafka_errors.RequestTimedOutError(),
        aiokafka_errors.NotControllerError(),
        kafka_errors.KafkaConnectionError("111 ECONNREFUSED"),
        kafka_errors.KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:1']"),
        kafka_errors.NodeNotReadyError(1),
        kafka_errors.LeaderNotAvailableError(),
        RdKafkaException(RdKafkaError(RdKafkaError._TRANSPORT, "Connection refused")),
        RdKafkaException(RdKafkaError(RdKafkaError._ALL_BROKERS_DOWN)),
        RdKafkaException(RdKafkaError(RdKafkaError.REBALANCE_IN_PROGRESS)),
    ],
)
def test_a_kafka_error_its_library_marks_retriable_is_transient_and_retried(error):
    assert kafka_transient(error) and not redis_transient(error)
    action, calls = failing(2, error)
    assert retrying(action, transient=kafka_transient) == 3 and len(calls) == 3


@pytest.mark.parametrize(
    "error",
    [
        kafka_errors.TopicAlreadyExistsError(),
        kafka_errors.InvalidReplicationFactorError(),
        aiokafka_errors.UnsupportedVersionError(),
        RdKafkaException(RdKafkaError(RdKafkaError._TRANSPORT, "gone for good", fatal=True)),
        RdKafkaException(RdKafkaError(RdKafkaError.TOPIC_AUTHORIZATION_FAILED)),
        redis.ConnectionError("gone"),
        RuntimeError("a bug"),
    ],
)
def test_other_errors_are_not_kafka_transient_and_raised_at_once(error):
    assert not kafka_transient(error)
    action, calls = failing(5, error)
    with pytest.raises(type(error)):
        retrying(action, transient=kafka_transient)
    assert len(calls) == 1


@pytest.mark.parametrize("error", [SaslAuthenticationFailedError("bad"), AIOKafkaSaslFailed("bad")])
def test_a_refused_kafka_login_is_never_retried_whatever_the_transient_test(error):
    action, calls = failing(5, error)
    with pytest.raises(AuthenticationFailed, match="TALLYROOM_KAFKA_SASL_PASSWORD"):
        retrying(action, transient=lambda exc: True, deadline=time.monotonic() + 60)
    assert len(calls) == 1


def test_the_deadline_ends_the_retries_with_the_last_error():
    action, calls = failing(1000, AIOKafkaNodeNotReady("node 1"))
    started = time.monotonic()
    with pytest.raises(AIOKafkaNodeNotReady):
        retrying(action, transient=kafka_transient, deadline=started + 1.0)
    took = time.monotonic() - started
    # tries at 0, 0.2, 0.6 and the last wait cut to the deadline: never past it by more than a try
    assert 1.0 <= took < 1.5 and 3 <= len(calls) <= 5


def test_the_async_retries_keep_the_deadline_too():
    action, calls = failing(1000, aiokafka_errors.KafkaConnectionError("refused"))

    async def attempt():
        return action()

    started = time.monotonic()
    with pytest.raises(aiokafka_errors.KafkaConnectionError):
        asyncio.run(retrying_async(attempt, transient=kafka_transient, deadline=started + 0.5))
    assert 0.5 <= time.monotonic() - started < 1.0 and len(calls) >= 2

    action, calls = failing(2, aiokafka_errors.KafkaConnectionError("refused"))
    assert asyncio.run(retrying_async(attempt, transient=kafka_transient, deadline=time.monotonic() + 30)) == 3


def test_a_deadline_already_passed_tries_once():
    action, calls = failing(5, kafka_errors.KafkaConnectionError("refused"))
    with pytest.raises(kafka_errors.KafkaConnectionError):
        retrying(action, transient=kafka_transient, deadline=time.monotonic() - 1)
    assert len(calls) == 1


def test_a_transient_kafka_error_left_at_the_deadline_is_the_one_line_unreachable_failure():
    settings = Settings(_env_file=None, kafka_bootstrap="127.0.0.1:29192,127.0.0.1:29194")
    for error in (AIOKafkaNodeNotReady("node 1"), aiokafka_errors.RequestTimedOutError()):
        failure = one_line_failure(error, settings)
        assert isinstance(failure, ServiceUnreachable) and failure.exit_status == UNREACHABLE_EXIT_STATUS
        assert str(failure) == "Kafka at 127.0.0.1:29192,127.0.0.1:29194 is not answering (TALLYROOM_KAFKA_BOOTSTRAP)"
    assert one_line_failure(AIOKafkaSaslFailed("bad"), settings).exit_status == AUTH_EXIT_STATUS
    assert one_line_failure(RuntimeError("a bug"), settings) is None


async def _swallows_a_cancel() -> None:
    """What redis-py can do: a cancel that lands during a command comes out as a ConnectionError."""
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        raise redis.ConnectionError("Connection closed by server.") from None


def test_a_cancel_a_library_turned_into_an_error_still_ends_the_task():
    async def loop_that_catches_errors() -> str:
        for _ in range(3):
            raise_if_cancelled()
            try:
                await _swallows_a_cancel()
            except redis.ConnectionError:
                pass
        return "went on"

    async def main() -> tuple[bool, bool]:
        task = asyncio.create_task(loop_that_catches_errors())
        await asyncio.sleep(0.01)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=1)
        return task in done, task.cancelled()

    assert asyncio.run(main()) == (True, True)


def test_retrying_async_does_not_retry_a_cancel_that_came_out_as_a_transient_error():
    attempts = 0

    async def attempt() -> None:
        nonlocal attempts
        attempts += 1
        await _swallows_a_cancel()

    async def main() -> bool:
        task = asyncio.create_task(retrying_async(attempt))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.wait([task], timeout=2)
        return task.cancelled()

    assert asyncio.run(main()) is True
    assert attempts == 1


def test_raise_if_cancelled_lets_a_task_that_was_not_cancelled_go_on():
    async def main() -> str:
        raise_if_cancelled()
        return "went on"

    assert asyncio.run(main()) == "went on"


def test_the_sinks_consumer_gets_the_same_connection_settings_in_librdkafkas_spelling():
    settings = Settings(
        kafka_bootstrap="k1:9093,k2:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="sink",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile="/ca.pem",
        connect_timeout=2.5,
    )
    assert settings.librdkafka_config() == {
        "bootstrap.servers": "k1:9093,k2:9093",
        "security.protocol": "sasl_ssl",
        "socket.connection.setup.timeout.ms": 2500,
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "sink",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/ca.pem",
    }
    plain = Settings(kafka_bootstrap="127.0.0.1:9092").librdkafka_config()
    assert plain["security.protocol"] == "plaintext" and not any(k.startswith(("sasl", "ssl")) for k in plain)
    # librdkafka accepts every key and value as given (an unknown one raises; the CA file is opened).
    from confluent_kafka import Consumer

    sasl = settings.model_copy(update={"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_ssl_cafile": None})
    Consumer(sasl.librdkafka_config() | {"group.id": "g"}).close()
