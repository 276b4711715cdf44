"""The dev stack's embedded servers: the Kafka fixture, and PostgreSQL/Valkey start, stop and persistence."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings
from kafka import KafkaConsumer, KafkaProducer

from devstack import postgres, valkey
from devstack.procs import LOOPBACK, free_port, port_accepts, process, read_pid


@pytest.mark.kafka
def test_kafka_fixture_round_trip(kafka_bootstrap: str) -> None:
    assert kafka_bootstrap.split(",") == settings.KAFKA_BOOTSTRAP_SERVERS
    topic = f"devstack-test-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, request_timeout_ms=5000, delivery_timeout_ms=10000, max_block_ms=10000
    )
    try:
        producer.send(topic, key=b"k", value=b"hello").get(timeout=10)
        producer.flush(10)
    finally:
        producer.close(5)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"devstack-test-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while not values and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values += [record.value for record in records]
        assert values == [b"hello"]
    finally:
        consumer.close()


def _query(port: int, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(host=LOOPBACK, port=port, user="postgres", dbname="orders", autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


def test_postgres_data_survives_stop_and_start(tmp_path: Path) -> None:
    home = tmp_path / "postgres"
    port = free_port()
    server = postgres.start(home, port, database="orders")
    try:
        _query(port, "CREATE TABLE kept (value text)")
        _query(port, "INSERT INTO kept VALUES ('yesterday')")
        server.stop()
        assert not postgres.is_running(home)
        assert not port_accepts(LOOPBACK, port)

        server = postgres.start(home, port, database="orders")
        assert _query(port, "SELECT value FROM kept") == [("yesterday",)]

        # A run that was killed leaves the server running: the next start takes over from it.
        server = postgres.start(home, port, database="orders")
        assert _query(port, "SELECT value FROM kept") == [("yesterday",)]
    finally:
        server.stop()
    assert not port_accepts(LOOPBACK, port)


def test_valkey_data_survives_stop_and_start_and_a_crash(tmp_path: Path) -> None:
    home = tmp_path / "valkey"
    port = free_port()
    server = valkey.start(home, port)
    try:
        redis.Redis(host=LOOPBACK, port=port).set("kept", "yesterday")
        server.stop()
        assert not port_accepts(LOOPBACK, port)

        server = valkey.start(home, port)
        client = redis.Redis(host=LOOPBACK, port=port)
        assert client.get("kept") == b"yesterday"

        # Killed hard once the write is fsynced to the AOF, it leaves a stale pid file; start recovers.
        client.set("after", "crash")
        assert client.execute_command("WAITAOF", 1, 0, 5000) == [1, 0]  # fsynced locally, no replicas
        pid = read_pid(home / "valkey.pid")
        assert pid is not None
        client.close()
        victim = process(pid)
        assert victim is not None
        os.kill(pid, signal.SIGKILL)
        victim.wait(timeout=10)  # SIGKILL is asynchronous: the port is free only once it is gone
        server = valkey.start(home, port)
        client = redis.Redis(host=LOOPBACK, port=port)
        assert client.get("kept") == b"yesterday"
        assert client.get("after") == b"crash"
        client.close()
    finally:
        server.stop()
    assert not port_accepts(LOOPBACK, port)


def test_only_a_non_empty_foreign_address_counts_as_named() -> None:
    from devstack.environment import named

    assert not named("postgres", {})
    assert not named("redis", {"REDIS_HOST": " "})
    assert named("postgres", {"POSTGRES_SERVER": "127.0.0.1", "POSTGRES_PORT": "5432"})
    assert named("redis", {"REDIS_HOST": "cache.internal"})
    # What a sourced .dev/env exports still means "the embedded dev server".
    assert not named("postgres", {"POSTGRES_SERVER": "127.0.0.1", "POSTGRES_PORT": "55432"})
    assert not named("redis", {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "56379"})
