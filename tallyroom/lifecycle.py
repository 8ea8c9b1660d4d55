"""How every long-running command stops, retries, and gives up on a bad password.

- ``Stop``: one small object, set by SIGTERM/SIGINT (``with stop.on_signals():``)
  or by code. Loops check it between steps and sleep through ``stop.wait``, so a
  signal never raises inside Rich, redis-py or kafka-python; the command finishes
  what it has in hand and leaves cleanly.
- ``retrying`` / ``retrying_async``: a service going away must not lose a record.
  The call is repeated (0.2 s, 0.4 s, ... at most 5 s apart) while it fails on an error
  its ``transient`` says will pass (by default Redis's connection errors; ``kafka_transient``
  for Kafka's), until it succeeds, the process is stopping or the optional ``deadline``
  (a ``time.monotonic()``) has passed: then the last error is raised. Every write retried
  this way is idempotent. A command's start-up on Kafka retries within
  ``TALLYROOM_KAFKA_START_TIMEOUT``: a cluster with a broker down or a leader being
  elected answers again within the brokers' session timeout.
- An authentication failure is never retried: no wait makes a wrong password right.
  It is raised as ``AuthenticationFailed``, which the CLI turns into one line naming
  the service and the setting, and exit status ``AUTH_EXIT_STATUS``.
- The same mechanism, ``OneLineFailure``, reports a service that does not answer when a
  command starts (``ServiceUnreachable``, status ``UNREACHABLE_EXIT_STATUS``) and an election
  that is not there (``consumers.reader.ElectionNotFound``, status 2): one line, no traceback
  (unless ``--debug``), each with its own exit status. ``one_line_failure`` tells them apart.
- ``check_kafka_login``: kafka-python (3.0) sees a refused SASL login only as a dropped
  connection and retries its bootstrap until it times out, so a Kafka client's process
  first logs in once on its own (aiokafka's connection, which reads the broker's error 58).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import redis
from aiokafka.errors import KafkaError as AIOKafkaError
from aiokafka.errors import SaslAuthenticationFailed as AIOKafkaSaslFailed
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException as RdKafkaException
from kafka.errors import KafkaError, SaslAuthenticationFailedError

from tallyroom.settings import Settings

if TYPE_CHECKING:
    from tallyroom.settings import Settings

log = logging.getLogger("tallyroom")

T = TypeVar("T")

AUTH_EXIT_STATUS = 78  # EX_CONFIG: a supervisor does not restart a process that exits with it
UNREACHABLE_EXIT_STATUS = 69  # EX_UNAVAILABLE: `serve` restarts it (with its back-off), the service may come back
FIRST_DELAY, MAX_DELAY = 0.2, 5.0
REDIS_TRANSIENT: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
Transient = Callable[[BaseException], bool]  # True for an error that waiting may cure


def redis_transient(exc: BaseException) -> bool:
    """A Redis connection that failed or timed out (a refused password is one too: told apart first)."""
    return isinstance(exc, REDIS_TRANSIENT)


# librdkafka's codes for what passes (confluent-kafka marks few errors retriable itself): no broker
# answering, a coordinator or leader being elected or moved, a rebalance, a request timed out.
RDKAFKA_TRANSIENT = frozenset(
    {
        RdKafkaError._TRANSPORT,
        RdKafkaError._ALL_BROKERS_DOWN,
        RdKafkaError._TIMED_OUT,
        RdKafkaError._WAIT_COORD,
        RdKafkaError.COORDINATOR_NOT_AVAILABLE,
        RdKafkaError.NOT_COORDINATOR,
        RdKafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        RdKafkaError.REBALANCE_IN_PROGRESS,
        RdKafkaError.LEADER_NOT_AVAILABLE,
        RdKafkaError.NOT_LEADER_FOR_PARTITION,
        RdKafkaError.REQUEST_TIMED_OUT,
        RdKafkaError.NETWORK_EXCEPTION,
    }
)
RDKAFKA_LOGIN_REFUSED = frozenset({RdKafkaError._AUTHENTICATION, RdKafkaError.SASL_AUTHENTICATION_FAILED})


def rdkafka_error(exc: BaseException) -> RdKafkaError | None:
    """The librdkafka error a confluent-kafka exception carries, if it is one."""
    if isinstance(exc, RdKafkaException) and exc.args and isinstance(exc.args[0], RdKafkaError):
        return exc.args[0]
    return None


def kafka_transient(exc: BaseException) -> bool:
    """An error kafka-python or aiokafka marks retriable, or one of librdkafka's that passes: a broker
    down or refusing connections, a partition, coordinator or controller being elected, a request or
    bootstrap timed out, no broker answering."""
    if (error := rdkafka_error(exc)) is not None:
        return not error.fatal() and (error.retriable() or error.code() in RDKAFKA_TRANSIENT)
    return isinstance(exc, KafkaError | AIOKafkaError) and bool(exc.retriable)


class Stop:
    """Set once, by a signal or by code; every loop of the process looks at the same one."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self, *_: object) -> None:  # also a signal handler
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def __bool__(self) -> bool:
        return self.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) if stopped meanwhile."""
        return self._event.wait(seconds)

    async def wait_async(self, seconds: float) -> bool:
        """``wait`` for asyncio code: the signal handler runs on the loop's thread, so poll briefly."""
        deadline = time.monotonic() + seconds
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, 0.05))
        return True

    @contextmanager
    def on_signals(self, *signals: signal.Signals) -> Iterator[Stop]:
        """Set on SIGTERM and SIGINT (or ``signals``) inside the block; the previous handlers come back after."""
        chosen = signals or (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self.set) for sig in chosen}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class OneLineFailure(Exception):
    """A failure the command reports as one line and its own exit status, not as a traceback."""

    exit_status = 1


class AuthenticationFailed(OneLineFailure):
    """A service refused our credentials: names the service and the setting to fix."""

    exit_status = AUTH_EXIT_STATUS

    def __init__(self, service: str, setting: str, detail: str, refused: str = "authentication"):
        super().__init__(f"{service} refused {refused} ({detail}): check {setting}")
        self.service, self.setting = service, setting


class ServiceUnreachable(OneLineFailure):
    """Kafka or Redis did not answer: names the service, the address tried and the setting that gives it."""

    exit_status = UNREACHABLE_EXIT_STATUS

    def __init__(self, service: str, address: str, setting: str):
        super().__init__(f"{service} at {address} is not answering ({setting})")
        self.service, self.address, self.setting = service, address, setting


def redis_unreachable(settings: Settings) -> ServiceUnreachable:
    return ServiceUnreachable("Redis", settings.redis_address, "TALLYROOM_REDIS_URL")


def kafka_unreachable(settings: Settings) -> ServiceUnreachable:
    return ServiceUnreachable("Kafka", settings.kafka_bootstrap, "TALLYROOM_KAFKA_BOOTSTRAP")


def one_line_failure(exc: BaseException, settings: Settings) -> OneLineFailure | None:
    """The ``OneLineFailure`` an exception (or one it was raised from) amounts to, or None for a real bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (failure := authentication_failure(current)) is not None:
            return failure
        if isinstance(current, OneLineFailure):
            return current
        if redis_transient(current):
            return redis_unreachable(settings)
        # No broker answered (no bootstrap, no metadata in time, a refused connection) or one that
        # would pass: kafka-python and aiokafka mark every such error retriable.
        if kafka_transient(current):
            return kafka_unreachable(settings)
        current = current.__cause__ or current.__context__
    return None


def check_redis(client: redis.Redis, settings: Settings) -> None:
    """One PING at start: a Redis that does not answer (within ``connect_timeout``) is a ``ServiceUnreachable``."""
    try:
        client.ping()
    except REDIS_TRANSIENT as exc:
        if (failure := authentication_failure(exc)) is not None:
            raise failure from exc
        raise redis_unreachable(settings) from exc


def authentication_failure(exc: BaseException) -> AuthenticationFailed | None:
    """The ``AuthenticationFailed`` an exception amounts to, or None if it is not about credentials."""
    if isinstance(exc, AuthenticationFailed):
        return exc
    # redis-py: WRONGPASS, NOAUTH, "AUTH ... without any password configured" (AuthenticationError, itself a
    # ConnectionError, so it must be told apart before retrying) and NOPERM (an ACL user lacking a right).
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthenticationWrongNumberOfArgsError):
        return AuthenticationFailed("Redis", "TALLYROOM_REDIS_PASSWORD", str(exc) or type(exc).__name__)
    if isinstance(exc, redis.exceptions.NoPermissionError):
        # Logged in, but as an ACL user without this right (a read-only user asked to write): the user is wrong.
        return AuthenticationFailed(
            "Redis", "TALLYROOM_REDIS_USERNAME", str(exc) or type(exc).__name__, refused="a command"
        )
    if isinstance(exc, SaslAuthenticationFailedError | AIOKafkaSaslFailed):
        return AuthenticationFailed("Kafka", "TALLYROOM_KAFKA_SASL_PASSWORD", str(exc) or type(exc).__name__)
    if (error := rdkafka_error(exc)) is not None and error.code() in RDKAFKA_LOGIN_REFUSED:
        return AuthenticationFailed("Kafka", "TALLYROOM_KAFKA_SASL_PASSWORD", error.str())
    return None


class _Retries:
    """One call's retries: whether an error is tried again, and after how long."""

    def __init__(self, what: str, stop: Stop | None, transient: Transient, deadline: float | None, level: int):
        self.what, self.stop, self.transient, self.deadline, self.level = what, stop, transient, deadline, level
        self.delay = FIRST_DELAY

    def wait_after(self, exc: Exception) -> float | None:
        """Seconds to wait before trying again, or None to give up (the caller re-raises ``exc``).

        A refused login is raised at once, as ``AuthenticationFailed``, whatever ``transient`` says.
        """
        if (failure := authentication_failure(exc)) is not None:
            raise failure from exc
        if not self.transient(exc) or (self.stop is not None and self.stop.is_set()):
            return None
        wait = self.delay
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                log.log(self.level, "%s still unavailable (%s); giving up", self.what, exc)
                return None
            wait = min(wait, left)
        log.log(self.level, "%s unavailable (%s); retrying in %.1fs", self.what, exc, wait)
        self.delay = min(self.delay * 2, MAX_DELAY)
        return wait


def retrying(
    action: Callable[[], T],
    stop: Stop | None = None,
    what: str = "Redis",
    *,
    transient: Transient = redis_transient,
    deadline: float | None = None,
    level: int = logging.WARNING,
) -> T:
    """``action()``, repeated while it fails on a ``transient`` error; raises once ``stop`` is set
    or ``deadline`` (a ``time.monotonic()``) has passed. Each retry is logged at ``level``."""
    retries = _Retries(what, stop, transient, deadline, level)
    while True:
        try:
            return action()
        except Exception as exc:
            wait = retries.wait_after(exc)
            if wait is None or (stop is not None and stop.wait(wait)):
                raise
            if stop is None:
                time.sleep(wait)


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` in a task that has been cancelled, though the cancel did not reach it.

    redis-py's asyncio client (8.1) can turn a cancel that lands during a command into a
    ``ConnectionError`` ("Connection closed by server", after its own retry), and the task goes on
    as if nothing happened. A loop that catches errors and reads again then never ends: of 1,000
    XREAD BLOCK loops cancelled at random moments on a local Redis, 66 outlived their cancel (a
    web server that did not stop in the web tests); with this check at the top of each round, none.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def retrying_async(
    action: Callable[[], Awaitable[T]],
    stop: Stop | None = None,
    what: str = "Redis",
    *,
    transient: Transient = redis_transient,
    deadline: float | None = None,
    level: int = logging.WARNING,
) -> T:
    """``retrying`` for coroutines."""
    retries = _Retries(what, stop, transient, deadline, level)
    while True:
        try:
            return await action()
        except Exception as exc:
            raise_if_cancelled()  # a cancel the library turned into an error is not retried
            wait = retries.wait_after(exc)
            if wait is None or (stop is not None and await stop.wait_async(wait)):
                raise
            if stop is None:
                await asyncio.sleep(wait)


def tune_gc(settings: Settings) -> None:
    """Freeze what a long-running process holds once it has started out of the garbage collector's scans.

    Everything alive now (imported libraries, the app, pydantic's schemas) is moved to the
    permanent generation with ``gc.freeze()``, so a full collection scans only what the process
    made since. In ``bench.hotpath`` (5,000 seats, 20,000 declarations) the worker's three full
    collections paused it for 128-140 ms each; frozen, the longest was 3 ms (bench/README.md).
    """
    import gc

    if settings.gc_freeze:
        gc.collect()  # what is garbage already is not frozen with the rest
        gc.freeze()


KAFKA_LOGIN_TIMEOUT_MS = 10_000


def check_kafka_login(settings: Settings) -> None:
    """Log in to the first bootstrap broker once; raise ``AuthenticationFailed`` if it refuses the SASL login.

    A no-op without SASL. Anything else (the broker not up yet, a timeout) is left to the
    client's own retries: only a refused login is final.
    """
    if not settings.kafka_security_protocol.upper().startswith("SASL"):
        return
    from aiokafka.conn import create_conn
    from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError

    from tallyroom.streams.app import broker_credentials

    for setting, value in (("USERNAME", settings.kafka_sasl_username), ("PASSWORD", settings.kafka_sasl_password)):
        if not value:
            raise AuthenticationFailed(
                "Kafka",
                f"TALLYROOM_KAFKA_SASL_{setting}",
                f"{settings.kafka_security_protocol} needs it, it is not set",
            )
    credentials = broker_credentials(settings)
    host, port = settings.kafka_host_port
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None

    async def login() -> None:
        conn = await create_conn(
            host,
            port,
            client_id="tallyroom-login-check",
            request_timeout_ms=KAFKA_LOGIN_TIMEOUT_MS,
            security_protocol=settings.kafka_security_protocol.upper(),
            ssl_context=getattr(credentials, "ssl_context", None),
            sasl_mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=password,
        )
        conn.close()

    try:
        asyncio.run(asyncio.wait_for(login(), KAFKA_LOGIN_TIMEOUT_MS / 1000))
    except (SaslAuthenticationFailed, UnsupportedSaslMechanismError) as exc:
        unsupported = isinstance(exc, UnsupportedSaslMechanismError)
        setting = "TALLYROOM_KAFKA_SASL_MECHANISM" if unsupported else "TALLYROOM_KAFKA_SASL_PASSWORD"
        raise AuthenticationFailed("Kafka", setting, str(exc) or type(exc).__name__) from None
    except Exception as exc:  # noqa: BLE001  (unreachable, timed out: the client's own retries deal with it)
        log.debug("Kafka login check inconclusive (%s)", exc)
