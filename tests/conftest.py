"""Make tests/testpaths.py importable from every test directory, and mark every test with its tier.

A tier is the directory under tests/ a test lives in, named by where it runs (the
markers are declared in setup.cfg): unit, engine, agent, security, htcondor_pool,
pool_roles, conformance, vm. So `pytest -m unit` or `pytest -m "not htcondor_pool"`
select by tier. `pool` (the old name of htcondor_pool) is applied with it.
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

TIERS = ("unit", "engine", "agent", "security", "htcondor_pool", "pool_roles", "conformance", "vm")
ALIASES = {"htcondor_pool": ("pool",)}


def pytest_collection_modifyitems(config, items):
    for item in items:
        relative = os.path.relpath(str(item.path), HERE)
        tier = relative.split(os.sep, 1)[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
            for alias in ALIASES.get(tier, ()):
                item.add_marker(getattr(pytest.mark, alias))
