"""manage.py create_kafka_topics: create the service's topics if missing (idempotent).

Nine topics: four order topics and order.voided (cleanup.policy=delete), three user topics
(compact: a new user replica is rebuilt from them) and the user-event
dead-letter topic (delete).
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kafka.errors import KafkaError

from orders_project.kafka import topic_plan, topics_create


class Command(BaseCommand):
    help = (
        "Create the order and user topics named in settings (KAFKA_TOPIC_*) and the user-event "
        "dead-letter topic, skipping those that exist. User topics are compacted, the others use "
        "retention (cleanup.policy=delete); every topic gets min.insync.replicas."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--partitions", type=int, default=settings.KAFKA_TOPIC_PARTITIONS)
        parser.add_argument("--replication-factor", type=int, default=settings.KAFKA_TOPIC_REPLICATION_FACTOR)
        parser.add_argument("--min-insync-replicas", type=int, default=settings.KAFKA_TOPIC_MIN_INSYNC_REPLICAS)

    def handle(
        self, *args: Any, partitions: int, replication_factor: int, min_insync_replicas: int, **options: Any
    ) -> None:
        if min_insync_replicas > replication_factor:
            raise CommandError(
                f"--min-insync-replicas ({min_insync_replicas}) cannot exceed --replication-factor "
                f"({replication_factor}): every acks=all write would be refused."
            )
        sizes = {"partitions": partitions, "replication_factor": replication_factor}
        try:
            result = topics_create(**sizes, min_insync_replicas=min_insync_replicas)
        except KafkaError as exc:
            raise CommandError(f"Kafka at {settings.KAFKA_BOOTSTRAP_SERVERS} is not reachable: {exc!r}") from exc
        configs = {
            topic.name: topic.topic_configs["cleanup.policy"]
            for topic in topic_plan(**sizes, min_insync_replicas=min_insync_replicas)
        }
        for topic, state in result.items():
            self.stdout.write(f"{topic}: {state} (cleanup.policy={configs[topic]})")
