"""`make bench` (python -m devstack bench): the service's figures beside their bare baselines (docs/performance.md)."""
