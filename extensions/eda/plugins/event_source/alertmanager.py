# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Alertmanager webhook event source for ansible-rulebook, with the migration's rollback guard.

Example rulebook: extensions/eda/rulebooks/rollback_on_alert.yml (docs/awx.md).
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
short_description: Receive Alertmanager webhook notifications; tell the rulebook whether a rollback may start.
description:
  - Listens for Alertmanager's webhook (C(POST /alerts), Alertmanager's webhook_configs payload) and
    puts one event per alert on the queue, C({alert: {...}, migration: {...}, meta: {...}}).
  - C(migration.actionable) is true only for a firing critical migration alert (label C(rule_id)) when no
    rollout holds the migration ledger's run lock and no rollback this source started is still running.
    At most one actionable event per rollback: a second firing while it runs is not actionable.
  - C(migration.trigger) is a safe identifier (C(alert:<alertname>)); C(migration.reason_b64) is the
    alert's text, base64-encoded, so that Ansible cannot template it (playbooks/rollback.yml decodes it).
options:
  host:
    description: Address to listen on.
    type: str
    default: 127.0.0.1
  port:
    description: Port to listen on.
    type: int
    default: 5050
  ledger:
    description: Ledger location (SQLite path or postgresql:// DSN); default as the collection resolves it
      (ANT_MIGRATION_LEDGER, ansible.cfg).
    type: str
  dispatch_timeout:
    description: Seconds after which a dispatched rollback that never started or never ended stops
      blocking new ones (the ledger's lock still does).
    type: int
    default: 1800
  token:
    description: When set, requests must carry C(Authorization: Bearer <token>) (Alertmanager
      http_config.authorization). Never logged.
    type: str
"""

import asyncio
import base64
import hmac
import logging
import os
import re
import sys
import time

logger = logging.getLogger(__name__)

_SAFE = re.compile(r'[^A-Za-z0-9_.:-]')
MAX_BODY = 1024 * 1024


def _ledger_module():
    """The collection's ledger (plugins/plugin_utils/ledger), importable from an installed collection."""
    try:
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger  # noqa: I001
    except ImportError:
        # .../ansible_collections/autonomi/network_migration/extensions/eda/plugins/event_source/this.py
        here = os.path.abspath(__file__)
        sys.path.insert(0, here[:here.rindex(os.sep + 'ansible_collections' + os.sep)])
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger  # noqa: I001
    return ledger


def _guard_module():
    """The collection's one guard (plugins/plugin_utils/guard.py); importable once the ledger is."""
    _ledger_module()
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard  # noqa: I001
    return guard


def safe_identifier(text, default='unknown'):
    """Only letters, digits, ``_ . : -`` (at most 120): safe in extra vars, logs and the ledger."""
    cleaned = _SAFE.sub('_', str(text or ''))[:120]
    return cleaned or default


def alert_text(alert):
    """The alert as one human line (data, never a template)."""
    labels = alert.get('labels') or {}
    notes = alert.get('annotations') or {}
    head = (labels.get('alertname', '?'), alert.get('status', '?'), alert.get('startsAt', '?'))
    parts = ['alert %s %s since %s' % head]
    for key in ('summary', 'description'):
        if notes.get(key):
            parts.append(str(notes[key]))
    if notes.get('runbook_url'):
        parts.append('runbook: %s' % notes['runbook_url'])
    return ' | '.join(parts)[:2000]


class RollbackGuard:
    """Decides which alert may start a rollback: one at a time, never while the lock is held.

    ``dispatched_at`` marks a rollback handed to the rulebook; it stays "in flight" until the
    ledger shows a rollback run that started after it and ended (or ``dispatch_timeout``).
    """

    def __init__(self, ledger_location=None, dispatch_timeout=1800, clock=time.time):
        self.ledger_location = ledger_location
        self.dispatch_timeout = dispatch_timeout
        self.clock = clock
        self.dispatched_at = None

    def _open(self):
        ledger = _ledger_module()
        return ledger.open_ledger(self.ledger_location or None)

    @staticmethod
    def _rollback_finished_since(ledger, since):
        """Whether a rollback run (by its recorded kind, never its playbook's name) started since then and ended."""
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils import run_kinds  # noqa: I001

        return any(run['ended_at'] for run in ledger.runs(kinds=run_kinds.ROLLBACK_KINDS, since=since - 1, limit=50))

    def judge(self, alert):
        """(actionable, why, lock) for one alert."""
        labels = alert.get('labels') or {}
        if alert.get('status') != 'firing':
            return False, 'alert is %s, not firing' % alert.get('status'), None
        if labels.get('severity') != 'critical':
            return False, 'severity %s is not critical' % labels.get('severity'), None
        if not labels.get('rule_id'):
            return False, 'not a migration alert (no rule_id label)', None
        try:
            with self._open() as ledger:
                # The one guard decides, as for every other caller: a rollback passes a pause or a
                # halt, not a live lock; a lock whose holder died is not live (the rollback takes it over).
                guard = _guard_module()
                lock = ledger.live_lock()
                decision = guard.decide(guard.Snapshot(flags=ledger.get_flags(), lock=lock), guard.Actor(),
                                        ignore_pause=True, allow_rollback=True)
                if not decision.allowed:
                    return False, '%s: the running rollout or rollback handles it' % decision.reason, lock
                if self.dispatched_at is not None:
                    age = self.clock() - self.dispatched_at
                    if self._rollback_finished_since(ledger, self.dispatched_at):
                        self.dispatched_at = None
                    elif age < self.dispatch_timeout:
                        return False, 'a rollback started %.0f s ago for an earlier alert is still running' % age, None
                    else:
                        logger.warning('the rollback dispatched %.0f s ago never finished in the ledger; '
                                       'no longer waiting for it', age)
                        self.dispatched_at = None
        except Exception as exc:  # an unreadable ledger starts nothing: fail closed
            return False, 'the ledger cannot be read (%s): nothing started' % exc.__class__.__name__, None
        self.dispatched_at = self.clock()
        return True, 'critical migration alert firing and no rollout holds the lock', None

    def events_for(self, payload):
        """Events of one Alertmanager notification; partition alerts first (they decide fast)."""
        alerts = [a for a in payload.get('alerts') or [] if isinstance(a, dict)]
        alerts.sort(key=lambda a: (a.get('labels') or {}).get('figure') != 'partition_risk')
        events = []
        for alert in alerts:
            actionable, why, lock = self.judge(alert)
            labels = alert.get('labels') or {}
            events.append({
                'alert': alert,
                'migration': {
                    'actionable': actionable,
                    'why': why,
                    'lock': lock,
                    'trigger': 'alert:%s' % safe_identifier(labels.get('alertname')),
                    'rule_id': safe_identifier(labels.get('rule_id'), default=''),
                    'reason_b64': base64.b64encode(alert_text(alert).encode('utf-8')).decode('ascii'),
                },
                'meta': {'receiver': payload.get('receiver'), 'group_key': payload.get('groupKey')},
            })
        return events


async def main(queue, args):
    from aiohttp import web  # pylint: disable=import-outside-toplevel

    host = args.get('host', '127.0.0.1')
    port = int(args.get('port', 5050))
    token = args.get('token')
    guard = RollbackGuard(args.get('ledger'), int(args.get('dispatch_timeout', 1800)))
    lock = asyncio.Lock()

    async def receive(request):
        if token and not hmac.compare_digest(request.headers.get('Authorization', ''), 'Bearer %s' % token):
            raise web.HTTPUnauthorized(text='missing or wrong bearer token')
        try:
            payload = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text='the body is not JSON') from None
        if not isinstance(payload, dict):
            raise web.HTTPBadRequest(text='expected an Alertmanager webhook payload (a JSON object)')
        async with lock:  # one notification at a time: the guard's decision is sequential
            events = await asyncio.get_running_loop().run_in_executor(None, guard.events_for, payload)
            for event in events:
                logger.info('alert %s (%s): %s', event['migration']['trigger'], event['alert'].get('status'),
                            'rollback may start' if event['migration']['actionable']
                            else 'nothing started: %s' % event['migration']['why'])
                await queue.put(event)
        return web.json_response({'events': len(events)})

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post('/alerts', receive)
    app.router.add_post('/', receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    logger.info('Alertmanager event source listening on http://%s:%d/alerts', host, port)
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == '__main__':
    # Standalone: print the events of the notifications received.
    class _Printer:
        async def put(self, event):
            print(event)

    asyncio.run(main(_Printer(), {'port': int(os.environ.get('PORT', '5050'))}))
