"""Realistic user events for local use, benchmarks and tests.

Yields (event_type, key, value) in the order to send them. Shares are
probabilities per message; duplicates resend an earlier message byte for byte,
out-of-order messages carry a timestamp older than the user's last event, and
malformed ones break the contract in one of the ways the consumer must survive.
"""

import datetime as dt
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orders_project.rfc3339 import rfc3339

MALFORMED_KINDS = ["not_json", "missing_event_id", "missing_user_id", "unknown_type", "wrong_field_type"]


@dataclass(frozen=True)
class GeneratedMessage:
    event_type: str
    key: bytes
    value: bytes


@dataclass
class GeneratorShares:
    updates: float = 0.3
    deletes: float = 0.05
    duplicates: float = 0.0
    out_of_order: float = 0.0
    malformed: float = 0.0


def _event_id(rng: random.Random) -> str:
    # From the seeded generator, so a seed repeats the stream byte for byte, event ids included.
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _envelope(rng: random.Random, event_type: str, timestamp: dt.datetime, data: dict[str, Any]) -> bytes:
    body = {
        "event_id": _event_id(rng),
        "event_type": event_type,
        "timestamp": rfc3339(timestamp),
        "version": "1.0",
        "data": data,
    }
    return json.dumps(body).encode()


def _malformed(rng: random.Random, user_id: str, now: dt.datetime) -> GeneratedMessage:
    kind = rng.choice(MALFORMED_KINDS)
    good = {
        "event_id": _event_id(rng),
        "event_type": "user.updated",
        "timestamp": rfc3339(now),
        "version": "1.0",
        "data": {"user_id": user_id, "name": "X"},
    }
    if kind == "not_json":
        return GeneratedMessage("user.updated", user_id.encode(), b"{not json")
    if kind == "missing_event_id":
        del good["event_id"]
    elif kind == "missing_user_id":
        good["data"] = {"name": "X"}
    elif kind == "unknown_type":
        good["event_type"] = "user.exploded"
    else:
        good["data"] = {"user_id": user_id, "name": 42}  # type: ignore[dict-item]  # wrong type on purpose
    return GeneratedMessage("user.updated", user_id.encode(), json.dumps(good).encode())


def user_events_generate(
    *, count: int, shares: GeneratorShares | None = None, seed: int | None = None, start: dt.datetime | None = None
) -> Iterator[GeneratedMessage]:
    shares = shares or GeneratorShares()
    rng = random.Random(seed)
    # By default the stream ends no later than now (each message is 1-50 ms after the
    # previous): a consumer refuses events dated ahead of its clock.
    clock = start or dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=50 * count)
    live: list[str] = []
    last_time: dict[str, dt.datetime] = {}
    sent: list[GeneratedMessage] = []
    data: dict[str, Any]
    for number in range(count):
        clock += dt.timedelta(milliseconds=rng.randint(1, 50))
        roll = rng.random()
        message: GeneratedMessage
        if sent and roll < shares.duplicates:
            message = rng.choice(sent[-100:])
        elif roll < shares.duplicates + shares.malformed:
            message = _malformed(rng, rng.choice(live) if live else "user-x", clock)
        elif live and roll < shares.duplicates + shares.malformed + shares.deletes:
            user_id = live.pop(rng.randrange(len(live)))
            data = {"user_id": user_id, "deleted_at": rfc3339(clock), "reason": "account_closed"}
            message = GeneratedMessage("user.deleted", user_id.encode(), _envelope(rng, "user.deleted", clock, data))
        elif live and roll < shares.duplicates + shares.malformed + shares.deletes + shares.updates:
            user_id = rng.choice(live)
            stamp = clock
            if rng.random() < shares.out_of_order and user_id in last_time:
                stamp = last_time[user_id] - dt.timedelta(seconds=1)  # older than what is stored
            fields = rng.sample(["email", "name", "status"], k=rng.randint(1, 3))
            data = {"user_id": user_id, "updated_at": rfc3339(stamp)}
            for name in fields:
                data[name] = {
                    "email": f"{user_id}+{number}@example.com",
                    "name": f"User {user_id} v{number}",
                    "status": rng.choice(["active", "active", "inactive"]),
                }[name]
            message = GeneratedMessage("user.updated", user_id.encode(), _envelope(rng, "user.updated", stamp, data))
            last_time[user_id] = max(last_time.get(user_id, stamp), stamp)
        else:
            user_id = f"user-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
            data = {
                "user_id": user_id,
                "email": f"{user_id}@example.com",
                "name": f"User {user_id}",
                "status": "active",
                "created_at": rfc3339(clock),
            }
            message = GeneratedMessage("user.created", user_id.encode(), _envelope(rng, "user.created", clock, data))
            live.append(user_id)
            last_time[user_id] = clock
        sent.append(message)
        yield message
