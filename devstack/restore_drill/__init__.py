"""`make restore-drill`: point-in-time restore of the embedded PostgreSQL, with the service and
Kafka around it, and what a restore means for the events already sent (run.py)."""
