"""Progress of a rebuild: reading the user topics from the beginning into an empty (or stale) replica.

The target of a rebuild is the end of each partition as the first fetch from
it reports it (its high watermark): what was published before the rebuild
began. Messages published later are live traffic; the rebuild is caught up
when every partition's position has reached its target. The high watermark of
a fetch is used, not `end_offsets()`, which Tansu answers with too small a
number (measured: 979 for a partition holding 1017 messages).
"""

import time
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition


@dataclass
class RebuildProgress:
    topics: list[str]
    started: float = field(default_factory=time.monotonic)
    targets: dict[TopicPartition, int] = field(default_factory=dict)
    handled: int = 0

    def observe(self, consumer: KafkaConsumer) -> None:
        """Record the target of each assigned partition the first time a fetch reported its end."""
        for partition in consumer.assignment():
            if partition not in self.targets:
                highwater = consumer.highwater(partition)
                if highwater is not None:
                    self.targets[partition] = highwater

    def caught_up(self, consumer: KafkaConsumer) -> bool:
        assigned = consumer.assignment()
        if not assigned or any(partition not in self.targets for partition in assigned):
            return False
        return all(consumer.position(partition) >= self.targets[partition] for partition in assigned)

    def line(self, consumer: KafkaConsumer) -> str:
        """One progress line: done/total per topic (total "?" until every partition reported), rate."""
        parts = []
        assigned = consumer.assignment()
        for topic in self.topics:
            mine = [partition for partition in assigned if partition.topic == topic]
            done = sum(min(consumer.position(p), self.targets.get(p, 0)) for p in mine)
            known = bool(mine) and all(partition in self.targets for partition in mine)
            total = str(sum(self.targets[partition] for partition in mine)) if known else "?"
            parts.append(f"{topic} {done}/{total}")
        seconds = max(time.monotonic() - self.started, 1e-9)
        return (
            f"rebuild: {', '.join(parts)}; {self.handled} messages in {seconds:.0f}s ({self.handled / seconds:.0f}/s)"
        )
