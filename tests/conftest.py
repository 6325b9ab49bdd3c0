"""Fixtures every test module shares: demo data generated once per session, and the slow marker;
and the order the modules start in.

Demo data is deterministic for a seed and a size, and generating it (up to 3 s for 'default') is
the largest fixed cost of many modules; the session fixture makes each (seed, size) once. Tests must
not modify what it returns (copy first).
"""

from __future__ import annotations

import functools

import pytest

from workbench.synth import DemoData, generate_demo_data


@pytest.fixture(scope="session")
def demo_data():
    """``demo_data(seed, size)``: :func:`workbench.synth.generate_demo_data`, made once per session."""

    @functools.cache
    def make(seed: int = 7, size: str = "tiny") -> DemoData:
        return generate_demo_data(seed=seed, size=size)

    return make


#: The longest modules, started first: with two workers (``make test``) one on each, the rest beside them.
FIRST = ("test_forecast_acceptance.py", "test_foreign_reports.py")


def pytest_collection_modifyitems(items: list) -> None:
    items.sort(key=lambda item: (item.path.name not in FIRST,
                                 FIRST.index(item.path.name) if item.path.name in FIRST else 0))
