"""tests/roles: pool roles as containers (marker `roles` for the ones that need the engine)."""
from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line("markers", "roles: brings up HTCondor pool nodes as containers "
                                       "(needs the engine and ../shared/htcondor)")
