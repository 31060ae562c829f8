"""Fixtures for the dashboard service: a synthetic ledger, a stub Prometheus, the service on a free port."""

from __future__ import annotations

import pytest

from ant_network_migration_dashboard import testing


@pytest.fixture
def ledger_path(tmp_path):
    path = tmp_path / 'ledger.sqlite3'
    testing.fill_ledger(path, hosts=4, nodes_per_host=3, migrated_hosts=1, dual_hosts=1)
    return path


@pytest.fixture
def prometheus():
    with testing.StubPrometheus() as stub:
        yield stub


@pytest.fixture
def service_factory():
    started = []

    def start(ledger_location, prometheus_url=None, **options):
        running = testing.RunningService(str(ledger_location), prometheus_url=prometheus_url, **options).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
