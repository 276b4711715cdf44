"""The dev stack: where `make dev` and `make test` get their servers from.

A tool run from the command line (`python -m devstack ...`),
never imported by the settings. For every kind of server (PostgreSQL, Redis,
Kafka) that the environment does not name, it starts an embedded one from a
PyPI wheel and hands its address to the processes it runs through the same
environment variables a deployment uses. See docs/dev-stack.md.
"""
