"""tests/roles: pool roles as containers (marker `roles` for the ones that need the engine)."""
from __future__ import annotations

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "roles: brings up HTCondor pool nodes as containers "
                                       "(needs the engine and ../shared/htcondor)")


@pytest.fixture(scope="session")
def pool_image() -> str:
    """The pool image from the Debian test base and the shared HTCondor (skips when either is missing)."""
    from pooltest import build_pool_image
    return build_pool_image()
