"""Tests that run the terraform binary (`terraform console`, `terraform fmt`).

Skipped where there is none; marked `processes`, since each case starts terraform
(about a second of CPU), so `make test-fast` leaves them out and `make test` runs them.
"""

from collections.abc import Callable

import pytest

from devstack.deploy.terraform_console import TERRAFORM_BINARY


def needs_terraform[Test: Callable[..., object]](test: Test) -> Test:
    test = pytest.mark.processes(test)
    return pytest.mark.skipif(TERRAFORM_BINARY is None, reason="no terraform binary on PATH")(test)
