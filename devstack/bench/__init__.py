"""`make bench` (python -m devstack bench): the issue 17 figures beside their bare baselines."""
