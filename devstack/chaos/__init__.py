"""`make chaos`: the whole service, from the chart's own commands, broken on purpose under load.

stack.py starts it (deploy-smoke's chart-to-process machinery, embedded servers,
Kafka behind a TCP proxy), load.py drives it and watches Kafka independently,
scenarios.py breaks it, run.py checks the invariants after every scenario.
docs/reliability.md says what is guaranteed and what the last run measured.
"""
