"""`make deploy-smoke`: the chart's own containers run as local processes, end to end.

A schema check proves the manifests are well formed, not that the commands and
environment they give each container fit the code. This does: it renders the
chart, then for the migrate Job and the web, worker, beat and consumer
Deployments runs each container's `command` + `args`, with the environment the
chart gives it (ConfigMap and Secret `envFrom`, explicit `env`, `$(VAR)`
expansion, on top of the image's own ENV from the Dockerfile), as a process on
this machine, against embedded PostgreSQL, Valkey and Kafka started fresh for
the run. Then it runs the probes the chart declares, creates an order through
the web container's port, waits for its `order.created` event on Kafka (the
worker's relay put it there), and stops every process with SIGTERM (after its
preStop hook), checking it exits within the pod's terminationGracePeriodSeconds.

What differs from a pod, and only this (everything else is the chart's):
- Server addresses point at the embedded servers: POSTGRES_SERVER/PORT/USER/
  PASSWORD/DB, REDIS_HOST/PORT/PASSWORD, KAFKA_BOOTSTRAP_SERVERS and
  CELERY_BROKER_URL when the chart sets it.
- GUNICORN_BIND is a free loopback port (the chart's container port maps to it
  for the probes), and so is each process's METRICS_PORT (the chart's `metrics`
  port, 9100 in every pod, would collide on one host); each is scraped once the
  order went through.
- Every path under /tmp (HEARTBEAT_FILE=/tmp/heartbeat, ...) becomes a folder of
  its own per process: in the cluster /tmp is an emptyDir per pod, here every
  process shares one host, and two heartbeats in one file would hide a stuck
  process. Probe commands get the same rewrite.
- DJANGO_STATIC_ROOT points at a temporary folder that `collectstatic` fills
  first, as the Dockerfile does at build (the image has them in /app/staticfiles).
- PATH has .venv/bin first (the image's /opt/venv/bin), the working directory
  is the repository root (the image's /app; paths under /app in commands and
  probes point there).
- Sandboxed (the default when root, as in CI; devstack/sandbox.py), every
  container, probe and preStop hook runs as the chart's runAsUser/runAsGroup
  (10001) with the file system read-only but its own /tmp folder, which is
  also mounted over /tmp (so the folders live under /var/tmp); a process that
  writes anywhere else fails the run. collectstatic and create_kafka_topics
  (the image build's and Terraform's jobs) run as the current user. Without
  the sandbox (--no-sandbox, or not root), every process runs as the current
  user with a writable file system.
"""
