"""tests/pool_roles: pool roles as containers (marker `roles` for the ones that need the engine)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def pool_image() -> str:
    """The pool image from the Debian test base and the shared HTCondor (skips when either is missing)."""
    from pooltest import build_pool_image
    return build_pool_image()
