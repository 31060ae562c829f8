# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dashboard's two sources, read through the collection's own code.

- the ledger: plugins/plugin_utils/ledger (progress, phase, velocity, ETA, flags, lock, runs,
  events), the same reads as ``ant-network-migration status`` (ant_network_migration_common.ledger_status);
- Prometheus: the migration's figures (ant_network_migration_common.figures: the monitoring role's
  recording rules, named by plugins/plugin_utils/alert_rules), the alert rules judged as the gate judges
  them (plugins/plugin_utils/services/health.py ``rule_verdicts``), and the ALERTS series.

Each reader is used from one worker thread at a time and never raises: a snapshot says what
failed, so the service keeps serving what it has.
"""

from __future__ import annotations

import re
import time

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import (
    alert_rules,
    ledger,
    prometheus,
    redaction,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import health
from ant_network_migration_common import figures as figures_lib
from ant_network_migration_common import ledger_status

RECENT_EVENTS = 20


def describe_location(location):
    """The ledger location for humans, without a DSN's password."""
    return redaction.redact_location(str(location)) if location else None


class LedgerReader:
    """Read-only view of the ledger. It never creates a ledger that does not exist."""

    def __init__(self, location):
        self.location = location
        self._handle = None

    def _open(self):
        if self._handle is None:
            if not ledger_status.exists(self.location):
                raise FileNotFoundError(f'no ledger at {describe_location(self.location)} yet '
                                        '(nothing recorded; check --ledger or ANT_MIGRATION_LEDGER)')
            self._handle = ledger.open_ledger(self.location)
        return self._handle

    def close(self):
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except Exception:  # pylint: disable=broad-except
                pass

    def _guard(self, work):
        try:
            return work(self._open()), None
        except Exception as exc:  # pylint: disable=broad-except
            self.close()  # reopen next time (a restarted PostgreSQL, a file that appeared)
            return None, f'{type(exc).__name__}: {redaction.redact_text(str(exc))}'

    def change_token(self):
        """(token, error): cheap: the newest event id and the newest node-history id."""
        def work(handle):
            events = handle.events(limit=1)
            history = handle.history(limit=1)
            return (events[0]['id'] if events else 0, history[0]['id'] if history else 0)

        return self._guard(work)

    def snapshot(self, previous=None, with_health=True):
        """(data, error): everything the status document takes from the ledger.

        Per-host state counts come from node_states() (one narrow query); the per-host unhealthy
        counts need every node row (nodes()), so they are read only ``with_health`` and otherwise
        carried over from ``previous`` (the poller refreshes them every few seconds).
        """
        def work(handle):
            data = ledger_status.status_data(handle, detailed=False)
            data['migration_run'] = data.pop('run')     # the latest canary, wave or rollback, with its outcome
            data['events'] = handle.events(limit=RECENT_EVENTS)
            runs = handle.runs(limit=1)
            data['run'] = runs[0] if runs else None
            data['node_states'] = handle.node_states()
            if with_health or not previous:
                data['unhealthy'] = sorted(n['node_id'] for n in handle.nodes() if n.get('health') == 'unhealthy')
            else:
                data['unhealthy'] = previous.get('unhealthy', [])
            return data

        return self._guard(work)

    def metrics_text(self):
        """(text, error): the ledger's own exposition (Ledger.metrics_text), read at scrape time."""
        return self._guard(lambda handle: handle.metrics_text())


def short_error(text, limit=300):
    """An error for the page: without the query URL requests puts in connection errors, and without
    a password (the collection's redaction)."""
    text = redaction.redact_text(re.sub(r' with url: \S+', '', text))
    return text if len(text) <= limit else text[:limit - 1] + '…'


class PrometheusReader:
    """Figures, rule verdicts and active alerts from Prometheus. Fails fast (no retries): the
    poller asks again at its next tick."""

    def __init__(self, url, timeout=3.0, overrides=None, settings=None):
        self.url = url
        self.timeout = timeout
        self._client = None
        self.config_error = None
        self.ruleset = None
        if not url:
            self.config_error = ('no Prometheus URL (--prometheus-url, MIGRATION_PROMETHEUS_URL or the '
                                 "inventory's migration_prometheus_url)")
            return
        try:   # the rules as the gate reads them: the inventory's migration_alert_overrides and _settings
            self.ruleset = alert_rules.load_rules(overrides=overrides or None, settings=settings or None)
        except alert_rules.AlertRulesError as exc:
            self.config_error = f'the alert rules: {exc}'

    def _open(self):
        if self._client is None:
            self._client = prometheus.client_from_options({'url': self.url, 'retries': 0, 'timeout': self.timeout})
        return self._client

    def close(self):
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def snapshot(self):
        """(data, error)."""
        if self.config_error:
            return None, self.config_error
        started = time.monotonic()
        try:
            client = self._open()
            figures = figures_lib.query_figures(client)
            alerts = client.query('ALERTS')
            # Judged as the gate judges (services/health.py): each rule over its window, pass / fail / no_data.
            verdicts, error = health.rule_verdicts(client, self.ruleset)
            if error:
                raise prometheus.PrometheusError(error)
        except Exception as exc:  # pylint: disable=broad-except
            self.close()
            return None, short_error(str(exc))
        return {
            'transports': figures.transports, 'fleet': figures.fleet, 'units': figures.units,
            'rules': verdicts,
            'alerts': sorted(({'name': a['metric'].get('alertname'), 'state': a['metric'].get('alertstate'),
                               'severity': a['metric'].get('severity'), 'transport': a['metric'].get('transport'),
                               'rule_id': a['metric'].get('rule_id')} for a in alerts),
                             key=lambda a: (a['state'] != 'firing', str(a['name']), str(a['transport']))),
            'query_seconds': round(time.monotonic() - started, 4),
        }, None
