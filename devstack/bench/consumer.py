"""User events into Redis against a bare consumer, and the consumer's peak memory.

`python -m devstack.bench user-events` measures the consumer's code (UserEventConsumer, in a thread,
at LOG_LEVEL=INFO as deployed) on fresh topics of this stack's broker; the bare kafka-python loop of
devstack/bench/bare.py (`consume-redis`) then reads the same topics, on the same broker, in a
new group, and writes the same Redis keys in one pipeline per poll (into a database of its
own on the same Valkey). Then the consumer as deployed (Procfile.dev's consume_user_events,
with --rebuild --until-caught-up so it reads those topics from the beginning
and exits when done) runs over them once more, for its peak memory; the run
before deleted the Redis keys it wrote, so this one does the same work.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import Any

from devstack.bench.background import procfile_process
from devstack.bench.stack import Stack

# The bare loop's Redis database on the stack's Valkey: not the consumer's (it deletes all of it after).
_BARE_REDIS_DB = 15
# The consumer logs at the level it is deployed with (the stack's is WARNING, for the web's
# benches): at INFO a line per message once cost more than the rest of its work.
_AS_DEPLOYED = {"LOG_LEVEL": "INFO"}
_TOPIC_SETTINGS = ("KAFKA_TOPIC_USER_CREATED", "KAFKA_TOPIC_USER_UPDATED", "KAFKA_TOPIC_USER_DELETED")


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"no {pattern!r} in:\n{text}")
    return float(found.group(1))


def user_event_figures(stack: Stack, *, count: int) -> dict[str, Any]:
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    out = stack.bench("user-events", "--count", str(count), "--bootstrap-servers", bootstrap, env=_AS_DEPLOYED)
    rate = _number(r"(\d+) events/s into Redis", out)
    cpu = _number(r"CPU (\d+) us/event", out)
    topics = re.search(r"^topics (\S+)$", out, re.M)
    if topics is None:
        raise RuntimeError(f"the user-events bench named no topics:\n{out}")
    names = topics.group(1).split(",")
    redis_url = f"redis://{stack.env['REDIS_HOST']}:{stack.env['REDIS_PORT']}/{_BARE_REDIS_DB}"
    bare = subprocess.run(
        [sys.executable, "-m", "devstack.bench.bare", "consume-redis", bootstrap, redis_url, str(count), *names],
        cwd=stack.repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    bare_rate, bare_cpu = (float(word) for word in bare.stdout.split()[-2:])
    figures: dict[str, Any] = {
        "count": count,
        "rate": rate,
        "cpu_us_per_event": cpu,
        "bare_rate": bare_rate,
        "bare_cpu_us_per_event": bare_cpu,
    }
    env = dict(zip(_TOPIC_SETTINGS, names, strict=True))
    started = time.monotonic()
    with procfile_process(
        stack, "consumer", "--rebuild", "--until-caught-up", "--session-timeout-ms", "6000", env={**env, **_AS_DEPLOYED}
    ) as consumer:
        try:
            consumer.popen.wait(300)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"consume_user_events --rebuild did not catch up with {count} events in 300 s") from None
        if consumer.popen.returncode:
            consumer.check_running()
        figures["process_seconds"] = round(time.monotonic() - started, 1)
        figures["consumer_peak_mb"] = round(consumer.memory.stop(), 1)
    return figures
