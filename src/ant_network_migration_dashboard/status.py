# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The /status document (schema: status.schema.json) from a ledger and a Prometheus snapshot.

Pure functions plus a small ring buffer of recent per-transport figures for the page's charts.
No figure is computed here that the ledger or the rule code already computes.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import time

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import run_kinds
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import control, preflight

SCHEMA_VERSION = 2
SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'status.schema.json')
CHART_FIGURES = ('health_score', 'error_rate', 'latency_p95')


def load_schema():
    with open(SCHEMA_FILE, encoding='utf-8') as handle:
        return json.load(handle)


def iso(epoch):
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat(timespec='seconds')


def _plain(value):
    """JSON-safe copy: datetimes as ISO strings, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec='seconds')
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class History:
    """The last ``keep_seconds`` of the chart figures per transport (filled at each scrape)."""

    def __init__(self, transports, keep_seconds=600):
        self.keep_seconds = keep_seconds
        self.transports = tuple(transports)
        self._points = collections.deque()

    def add(self, at, transports):
        self._points.append((at, {t: {f: (transports.get(t) or {}).get(f) for f in CHART_FIGURES}
                                  for t in self.transports}))
        while self._points and self._points[0][0] < at - self.keep_seconds:
            self._points.popleft()

    def as_dict(self):
        out = {'t': [round(at, 1) for at, _ in self._points]}
        for transport in self.transports:
            out[transport] = {f: [values[transport][f] for _, values in self._points] for f in CHART_FIGURES}
        return out


def _hosts(node_states, unhealthy):
    """{host: {'nodes': n, 'states': {state: count}, 'unhealthy': n}} from {node_id: state}."""
    out = {}
    for node_id, state in sorted(node_states.items()):
        entry = out.setdefault(node_id.rsplit('/', 1)[0], {'nodes': 0, 'states': {}, 'unhealthy': 0})
        entry['nodes'] += 1
        entry['states'][state] = entry['states'].get(state, 0) + 1
    for node_id in unhealthy:
        host = node_id.rsplit('/', 1)[0]
        if host in out:
            out[host]['unhealthy'] += 1
    return out


def _run(ledger_data):
    """The latest run of any kind; its stage from the kind recorded with it (plugin_utils/run_kinds.py), never
    from its playbook's file name; ``failed``: whether its outcome fails its playbook (services/control.py)."""
    run = ledger_data.get('run')
    if not run:
        return None
    return {'id': run.get('id'), 'playbook': run.get('playbook'), 'operator': run.get('operator'),
            'kind': run.get('kind'), 'stage': run_kinds.stage(run.get('kind')), 'started_at': run.get('started_at'),
            'ended_at': run.get('ended_at'), 'outcome': run.get('outcome'), 'running': not run.get('ended_at'),
            'failed': control.run_failed(run)}


def _lock(ledger_data):
    """The run lock with its heartbeat and whether its holder is alive (``live``: false once its controller is
    gone from this host with every process it started - the next run takes it over)."""
    lock = ledger_data.get('lock')
    return dict(lock, live=bool(ledger_data.get('lock_live'))) if lock else None


def _budget(ledger_data):
    budget = ledger_data.get('budget')
    if budget is None:
        return None
    return dict(budget, exhausted=bool(ledger_data.get('budget_exhausted')), text=ledger_data.get('budget_text'))


def _preflight(ledger_data):
    """The newest preflight or waiver (services/preflight.py status) with the line `status` prints; None when the
    ledger was not read."""
    if not ledger_data:
        return None
    state = ledger_data.get('preflight')
    return dict(state or {'result': 'none'}, text=preflight.describe(state))


def _source(ok, error, checked_at, last_ok_at, **extra):
    return dict({'ok': ok, 'error': error, 'checked_at': iso(checked_at), 'last_ok_at': iso(last_ok_at)}, **extra)


def build(ledger, prometheus, history, transports=modes.TRANSPORTS, now=None):
    """The status document.

    ``ledger`` / ``prometheus``: ``{'data': dict | None, 'error': str | None, 'checked_at': epoch,
    'last_ok_at': epoch | None, ...}`` as kept by the service; data is the last good snapshot
    (kept while a source is down, and marked stale by the source's ``ok: false``).
    """
    now = time.time() if now is None else now
    ldata = ledger.get('data') or {}
    pdata = prometheus.get('data') or {}
    missing = [name for name, src in (('ledger', ledger), ('prometheus', prometheus)) if src.get('error')]
    progress = ldata.get('progress')
    doc = {
        'schema_version': SCHEMA_VERSION,
        'generated_at': iso(now),
        'sources': {
            'ledger': _source(not ledger.get('error') and bool(ldata), ledger.get('error'), ledger.get('checked_at'),
                              ledger.get('last_ok_at'), location=ledger.get('location')),
            'prometheus': _source(not prometheus.get('error') and bool(pdata), prometheus.get('error'),
                                  prometheus.get('checked_at'), prometheus.get('last_ok_at'),
                                  url=prometheus.get('url')),
        },
        'missing': missing,
        'migration': _plain(progress) if progress else None,
        'flags': _plain(ldata.get('flags') or {'paused': None, 'halted': None}),
        'lock': _plain(_lock(ldata)),
        'intents': _plain(ldata.get('intents') or []),
        'budget': _plain(_budget(ldata)),
        'migration_run': _plain(ldata.get('migration_run')),
        'run': _plain(_run(ldata)),
        'canary': _plain(ldata.get('canary')),
        'preflight': _plain(_preflight(ldata)),
        'plan': _plain(ldata.get('plan')),
        'gate_verdicts': _plain(ldata.get('gate_verdicts') or []),
        'events': _plain(ldata.get('events') or []),
        'hosts': _hosts(ldata.get('node_states') or {}, ldata.get('unhealthy') or []),
        'transports': {t: _plain((pdata.get('transports') or {}).get(t)) for t in transports} if pdata else None,
        'fleet': _plain(pdata.get('fleet')) if pdata else None,
        'units': _plain(pdata.get('units')) if pdata else None,
        'rules': _plain(pdata.get('rules')) if pdata else None,
        'alerts': _plain(pdata.get('alerts')) if pdata else None,
        'history': history.as_dict(),
    }
    return doc


def dumps(doc):
    return json.dumps(doc, separators=(',', ':'), sort_keys=True)
