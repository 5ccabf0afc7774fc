"""`python -m worker.deadletters`: look at the dead-letter queue and send messages back.

    python -m worker.deadletters list [--limit N]     what is there, and why (nothing is removed)
    python -m worker.deadletters replay [--limit N]   move messages back to their partition queue

Replaying is safe: workers apply each message id at most once, so a message that was in
fact counted before it was dead-lettered is skipped. A message that cannot be decoded
goes straight back to the dead-letter queue; fix the producer, then drop it (the
management UI's "Purge" or "Get messages" with "Ack message").
"""
from __future__ import annotations

import argparse
import sys

from common import process
from common.broker import BrokerAdmin, RawMessage, Topology


def reason(message: RawMessage) -> str:
    """Why the message is here: the worker's own reason, or RabbitMQ's (e.g. delivery_limit)."""
    headers = message.headers
    if "x-error" in headers:
        return _text(headers["x-error"])
    return f"{_text(headers.get('x-first-death-reason', 'unknown'))} (by RabbitMQ)"


def original_queue(message: RawMessage) -> str | None:
    headers = message.headers
    return _text(headers.get("x-original-queue") or headers.get("x-first-death-queue")) or None


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def list_dead_letters(admin: BrokerAdmin, topology: Topology, limit: int) -> list[RawMessage]:
    """Read up to `limit` dead letters without removing them (they go back when the connection closes)."""
    seen = []
    while len(seen) < limit:
        message = admin.get(topology.dead_queue, ack=False)
        if message is None:
            break
        seen.append(message)
    return seen


def replay(admin: BrokerAdmin, topology: Topology, limit: int) -> int:
    """Move up to `limit` dead letters back to their partition queue: publish (confirmed), then ack."""
    moved = 0
    while moved < limit:
        message = admin.get(topology.dead_queue, ack=False)
        if message is None:
            break
        target = original_queue(message)
        if target is None or not target.startswith(f"{topology.prefix}.p"):
            print(f"skipped {message.message_id or '-'}: no partition queue recorded", file=sys.stderr)
            break  # leave it (and the rest) where it is; it returns when we disconnect
        admin.publish(target, message.body, message.message_id)
        admin.ack(message)
        moved += 1
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.deadletters", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("list", "replay"))
    parser.add_argument("--limit", type=int, default=100, help="at most this many messages (default 100)")
    args = parser.parse_args(argv)
    settings = process.start("deadletters", command=args.command)
    topology = Topology.from_settings(settings)
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare(topology)
        if args.command == "list":
            for message in list_dead_letters(admin, topology, args.limit):
                print(f"{message.message_id or '-'}\t{original_queue(message) or '-'}\t{reason(message)}\t{message.body[:120]!r}")
            return 0
        print(f"replayed {replay(admin, topology, args.limit)} message(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
