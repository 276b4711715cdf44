"""manage.py create_kafka_topics: create the service's seven topics if missing (idempotent)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kafka.errors import KafkaError

from orders_project.kafka import topics_create


class Command(BaseCommand):
    help = "Create the order and user topics named in settings (KAFKA_TOPIC_*), skipping those that exist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--partitions", type=int, default=settings.KAFKA_TOPIC_PARTITIONS)
        parser.add_argument("--replication-factor", type=int, default=settings.KAFKA_TOPIC_REPLICATION_FACTOR)

    def handle(self, *args: Any, partitions: int, replication_factor: int, **options: Any) -> None:
        try:
            result = topics_create(partitions=partitions, replication_factor=replication_factor)
        except KafkaError as exc:
            raise CommandError(f"Kafka at {settings.KAFKA_BOOTSTRAP_SERVERS} is not reachable: {exc!r}") from exc
        for topic, state in result.items():
            self.stdout.write(f"{topic}: {state}")
