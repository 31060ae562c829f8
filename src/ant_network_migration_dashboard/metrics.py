# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""/metrics: the migration's own gauges for Prometheus to scrape (prometheus_client exposition).

The ledger gauges (autonomi_migration_nodes_*, progress, phase, velocity, ETA, paused, halted)
are the ledger's own rendering (Ledger.metrics_text, docs/ledger.md), re-exposed unchanged; this
module adds what only the service knows: the lock, the last gate and canary verdicts, the newest preflight, and
whether its sources answer. Transport figures are not re-exported: Prometheus already has them.
"""

from __future__ import annotations

import datetime as dt

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

PREFIX = 'autonomi_migration_'


def _epoch(text):
    try:
        return dt.datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


class MigrationCollector:
    """A prometheus_client collector over the service's latest snapshots (no I/O at scrape time)."""

    def __init__(self, service):
        self.service = service

    def describe(self):
        return []

    def collect(self):
        ledger = self.service.ledger_state
        data = ledger.get('data') or {}
        text = self.service.ledger_metrics_text
        if text and not ledger.get('error'):
            yield from text_string_to_metric_families(text)
        if data and not ledger.get('error'):
            lock = data.get('lock')
            yield GaugeMetricFamily(PREFIX + 'locked', '1 while a run holds the migration lock.',
                                    value=1 if lock else 0)
            verdicts = data.get('gate_verdicts') or []
            if verdicts:
                last = verdicts[0]
                verdict = (last.get('data') or {}).get('verdict') or 'unknown'
                gate = GaugeMetricFamily(PREFIX + 'gate_last_verdict',
                                         'The last gate verdict (1 for the verdict given).', labels=['verdict'])
                gate.add_metric([str(verdict)], 1)
                yield gate
                when = _epoch(last.get('at'))
                if when is not None:
                    yield GaugeMetricFamily(PREFIX + 'gate_last_verdict_timestamp_seconds',
                                            'When the last gate verdict was given (Unix seconds).', value=when)
            canary = data.get('canary')
            if canary:
                gauge = GaugeMetricFamily(PREFIX + 'canary_verdict', 'The canary verdict (1 for the verdict given).',
                                          labels=['verdict'])
                gauge.add_metric([str(canary.get('verdict'))], 1)
                yield gauge
            pre = data.get('preflight')
            if pre:
                gauge = GaugeMetricFamily(PREFIX + 'preflight_result',
                                          'The newest preflight or waiver of its gate (1 for its result: passed, '
                                          'failed or waived).', labels=['result'])
                gauge.add_metric([str(pre.get('result'))], 1)
                yield gauge
                when = _epoch(pre.get('at'))
                if when is not None:
                    yield GaugeMetricFamily(PREFIX + 'preflight_timestamp_seconds',
                                            'When the newest preflight or waiver was recorded (Unix seconds).',
                                            value=when)
        up = GaugeMetricFamily(PREFIX + 'dashboard_source_up',
                               '1 when the dashboard reached the source at its last attempt.', labels=['source'])
        up.add_metric(['ledger'], 0 if ledger.get('error') or not data else 1)
        prom = self.service.prometheus_state
        up.add_metric(['prometheus'], 0 if prom.get('error') or not prom.get('data') else 1)
        yield up
        yield GaugeMetricFamily(PREFIX + 'dashboard_websocket_clients', 'WebSocket clients connected now.',
                                value=len(self.service.clients))
        yield GaugeMetricFamily(PREFIX + 'dashboard_status_build_seconds',
                                'Time the last status document took to build.', value=self.service.build_seconds)


def registry_for(service):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MigrationCollector(service))
    return registry
