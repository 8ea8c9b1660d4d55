"""The machine's floor for the viewers bench: moving bytes over loopback TCP with no HTTP and no parsing.

    python -m tallyroom.bench.loopback --megabytes 6600 --connections 5000

One process writes the same 64 kB block round-robin to ``connections`` sockets (a fan-out's
pattern: the same bytes to every viewer) until ``megabytes`` have gone; a second process
receives them into one buffer and counts. Nothing is framed, parsed or copied in Python
beyond the kernel's own copies. Whatever a web server and its clients do on top of this, on
the same cores, can only be slower: it is the reference row of ``bench.viewers``, as the
no-op Faust agent is of ``tallyroom bench``.

Loopback only, bounded: at most ``MAX_CONNECTIONS`` sockets and ``MAX_MEGABYTES``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import selectors
import socket
import time
from dataclasses import asdict, dataclass

LOOPBACK = "127.0.0.1"
BLOCK = 64 * 1024  # as a viewer's send (consumers/web/events.py SEND_MAX)
MAX_CONNECTIONS = 20_000
MAX_MEGABYTES = 50_000
RECEIVE_BUFFER = 256 * 1024


@dataclass(frozen=True)
class LoopbackFloor:
    megabytes: float  # what was sent (and received)
    connections: int
    seconds: float  # first write to the receiver's last byte
    gigabytes_per_second: float
    sender_cpu_seconds: float
    receiver_cpu_seconds: float


def _receive(listener: socket.socket, connections: int, report) -> None:
    sockets = [listener.accept()[0] for _ in range(connections)]
    listener.close()
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    buffer = bytearray(RECEIVE_BUFFER)
    received, open_sockets = 0, len(sockets)
    while open_sockets:
        for key, _ in selector.select():
            count = key.fileobj.recv_into(buffer)  # type: ignore[union-attr]
            if count == 0:
                selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
                open_sockets -= 1
            received += count
    report.send((received, time.perf_counter(), sum(os.times()[:2])))


def measure(megabytes: float, connections: int) -> LoopbackFloor:
    """Send ``megabytes`` over ``connections`` loopback sockets; what it took."""
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(f"connections: {connections} is outside 1..{MAX_CONNECTIONS}")
    if not 0 < megabytes <= MAX_MEGABYTES:
        raise ValueError(f"megabytes: {megabytes} is outside (0, {MAX_MEGABYTES}]")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * connections + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * connections + 100), hard))
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(min(connections, 4096))
    context = multiprocessing.get_context("fork")  # the receiver inherits the listening socket
    ours, theirs = context.Pipe()
    receiver = context.Process(target=_receive, args=(listener, connections, theirs), daemon=True)
    receiver.start()
    senders = [socket.create_connection(listener.getsockname()) for _ in range(connections)]
    listener.close()
    block = os.urandom(BLOCK)
    rounds = max(1, int(megabytes * 1e6 / (BLOCK * connections) + 0.5))
    cpu_before = sum(os.times()[:2])
    started = time.perf_counter()
    for _ in range(rounds):
        for sock in senders:
            sock.sendall(block)
    for sock in senders:
        sock.close()
    sender_cpu = sum(os.times()[:2]) - cpu_before
    if not ours.poll(600):
        receiver.kill()
        raise TimeoutError("the receiving process said nothing within 600s")
    received, finished, receiver_cpu = ours.recv()
    receiver.join(10)
    sent = rounds * BLOCK * connections
    if received != sent:
        raise RuntimeError(f"sent {sent} bytes, received {received}")
    seconds = finished - started
    return LoopbackFloor(
        megabytes=round(sent / 1e6, 1),
        connections=connections,
        seconds=round(seconds, 3),
        gigabytes_per_second=round(sent / seconds / 1e9, 2),
        sender_cpu_seconds=round(sender_cpu, 2),
        receiver_cpu_seconds=round(receiver_cpu, 2),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=float, default=1_000.0)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args(argv)
    try:
        floor = measure(args.megabytes, args.connections)
    except ValueError as exc:
        parser.error(str(exc))
    for name, value in asdict(floor).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
