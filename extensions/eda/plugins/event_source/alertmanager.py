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
  - Listens for Alertmanager's webhook (C(POST /alerts), Alertmanager's webhook_configs payload) and puts one
    event per alert on the queue, C({migration: {...}, alert: {alertname, status}, meta: {...}}). The raw alert
    never reaches the rulebook or the playbook - only the validated fields.
  - Every request must carry C(Authorization: Bearer <token>) (the monitoring role gives Alertmanager's webhook
    receiver the same token). The source refuses to start without a token.
  - C(migration.actionable) is true only for a firing alert of one of the collection's rules whose severity in
    the rules rolls back (critical), when no rollout holds the ledger's run lock, no rollback this source started
    is still running, and this firing (Alertmanager's fingerprint and startsAt) has not started a rollback
    before - one firing, one rollback, for its whole lifetime, remembered in the ledger until it resolves.
    Anything else (an unknown rule, a forged severity, a resolved or repeated alert) is logged, starts nothing
    and blocks nothing.
  - C(migration.strategy) is the rule's - V(fast) for a fleet-wide figure (partition risk), V(gradual) otherwise;
    C(migration.trigger) is a safe identifier (C(alert:<alertname>)); C(migration.reason_b64) is the alert's
    text, base64-encoded, so that Ansible cannot template it (playbooks/rollback.yml decodes it).
options:
  host:
    description: Address to listen on.
    type: str
    default: 127.0.0.1
  port:
    description: Port to listen on.
    type: int
    default: 5050
  token:
    description: The shared secret Alertmanager sends as a bearer token. Required. Never logged.
    type: str
  ledger:
    description: Ledger location (SQLite path or postgresql:// DSN); default as the collection resolves it
      (ANT_MIGRATION_LEDGER, ansible.cfg).
    type: str
  overrides:
    description: The operator's alert rule overrides (C(migration_alert_overrides)), so that a rule's severity is
      judged as the monitoring role installed it.
    type: dict
  dispatch_timeout:
    description: Seconds after which a dispatched rollback that never started or never ended stops
      blocking new ones (the ledger's lock still does).
    type: int
    default: 1800
"""

import asyncio
import base64
import hmac
import logging
import os
import time

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024


def collection():
    """The collection's plugin_utils, found the way ansible-playbook finds it: through Ansible's collection
    loader and the configured collections path (ANSIBLE_COLLECTIONS_PATH, ansible.cfg)."""
    try:
        import ansible_collections.autonomi.network_migration.plugins.plugin_utils  # noqa: F401
    except ImportError:
        from ansible.plugins.loader import init_plugin_loader  # noqa: I001

        init_plugin_loader()
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import (  # noqa: I001
        alert_rules, guard, ledger, run_kinds, validation)
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import alerts  # noqa: I001
    return {'alert_rules': alert_rules, 'guard': guard, 'ledger': ledger, 'alerts': alerts, 'run_kinds': run_kinds,
            'validation': validation}


def alert_text(alert):
    """The alert as one human line (data, never a template)."""
    labels = alert.get('labels') if isinstance(alert.get('labels'), dict) else {}
    notes = alert.get('annotations') if isinstance(alert.get('annotations'), dict) else {}
    head = (labels.get('alertname', '?'), alert.get('status', '?'), alert.get('startsAt', '?'))
    parts = ['alert %s %s since %s' % head]
    for key in ('summary', 'description'):
        if notes.get(key):
            parts.append(str(notes[key]))
    if notes.get('runbook_url'):
        parts.append('runbook: %s' % notes['runbook_url'])
    return ' | '.join(parts)[:2000]


class RollbackGuard:
    """Decides which alert may start a rollback: a collection rule that rolls back, one rollback at a time,
    never while the lock is held, once per firing.

    ``dispatched_at`` marks a rollback handed to the rulebook; it stays "in flight" until the ledger shows a
    rollback run (by its recorded kind) that started after it and ended, or ``dispatch_timeout``.
    """

    def __init__(self, ledger_location=None, dispatch_timeout=1800, clock=None, overrides=None):
        self.lib = collection()
        self.ruleset = self.lib['alert_rules'].load_rules(overrides=overrides)
        self.ledger_location = ledger_location
        self.dispatch_timeout = dispatch_timeout
        self.clock = clock or time.time
        self.dispatched_at = None

    def _open(self):
        ledger = self.lib['ledger']
        return ledger.open_ledger(self.ledger_location or None)

    @staticmethod
    def _rollback_finished_since(ledger, since, kinds):
        """Whether a rollback run (by its recorded kind, never its playbook's name) started since then and ended."""
        return any(run['ended_at'] for run in ledger.runs(kinds=kinds, since=since - 1, limit=50))

    def judge(self, alert):
        """(migration fields of the event) for one alert."""
        decision = self.lib['alerts'].alert_decision(alert, self.ruleset)
        out = {'actionable': False, 'why': decision['why'], 'lock': None, 'trigger': decision['trigger'],
               'rule_id': decision['rule_id'], 'strategy': decision['strategy']}
        if decision['resolved']:
            try:
                with self._open() as ledger:
                    ledger.release_alert(decision['fingerprint'], rule_id=decision['rule_id'])
            except Exception as exc:  # noqa: BLE001  # nothing starts on a resolve; say why it was not recorded
                out['why'] = 'resolved (not recorded: the ledger cannot be written, %s)' % exc.__class__.__name__
            return out
        if not decision['actionable']:
            return out
        try:
            with self._open() as ledger:
                guard = self.lib['guard']
                lock = ledger.live_lock()
                # The one guard decides, as for every other caller: a rollback passes a pause or a halt, not a
                # live lock; a lock whose holder died is not live (the rollback takes it over).
                decision_now = guard.decide(guard.Snapshot(flags=ledger.get_flags(), lock=lock), guard.Actor(),
                                            ignore_pause=True, allow_rollback=True)
                if not decision_now.allowed:
                    out.update(why='%s: the running rollout or rollback handles it' % decision_now.reason, lock=lock)
                    return out
                if self.dispatched_at is not None:
                    age = self.clock() - self.dispatched_at
                    if self._rollback_finished_since(ledger, self.dispatched_at, self.lib['run_kinds'].ROLLBACK_KINDS):
                        self.dispatched_at = None
                    elif age < self.dispatch_timeout:
                        out['why'] = 'a rollback started %.0f s ago for an earlier alert is still running' % age
                        return out
                    else:
                        logger.warning('the rollback dispatched %.0f s ago never finished in the ledger; '
                                       'no longer waiting for it', age)
                        self.dispatched_at = None
                earlier = ledger.claim_alert(decision['fingerprint'], decision['starts_at'],
                                             rule_id=decision['rule_id'], trigger=decision['trigger'],
                                             strategy=decision['strategy'])
                if earlier:
                    out['why'] = ('this firing (since %s) already started a rollback at %s: one rollback per firing '
                                  'until it resolves' % (decision['starts_at'] or '?', earlier.get('at')))
                    return out
        except Exception as exc:  # noqa: BLE001  # an unreadable ledger starts nothing: fail closed
            out['why'] = 'the ledger cannot be read (%s): nothing started' % exc.__class__.__name__
            return out
        self.dispatched_at = self.clock()
        out.update(actionable=True, why='%s and no rollout holds the lock' % decision['why'])
        return out

    def events_for(self, payload):
        """Events of one Alertmanager notification; partition alerts (fast) first: they decide fast."""
        alerts = [a for a in payload.get('alerts') or [] if isinstance(a, dict)] if isinstance(payload, dict) else []
        strategies = {id(a): self.lib['alerts'].alert_decision(a, self.ruleset)['strategy'] for a in alerts}
        alerts.sort(key=lambda a: strategies[id(a)] != 'fast')
        safe = self.lib['validation'].safe_name
        events = []
        for alert in alerts:
            migration = self.judge(alert)
            migration['reason_b64'] = base64.b64encode(alert_text(alert).encode('utf-8')).decode('ascii')
            labels = alert.get('labels') if isinstance(alert.get('labels'), dict) else {}
            events.append({
                'migration': migration,
                'alert': {'alertname': safe(labels.get('alertname')), 'status': safe(alert.get('status'))},
                'meta': {'receiver': safe(payload.get('receiver'))},
            })
        return events


def authorized(header, token):
    """Whether the Authorization header carries the bearer token (constant-time comparison)."""
    return hmac.compare_digest((header or '').encode('utf-8'), ('Bearer %s' % token).encode('utf-8'))


def listen_settings(args):
    """(host, port, token) from the source's arguments; ValueError naming what is missing or unsafe."""
    token = args.get('token')
    if not token or not str(token).strip():
        raise ValueError('the alertmanager event source needs a token: anyone who can reach it could roll the fleet '
                         'back. Set token (rulebook variable eda_alertmanager_token) and give Alertmanager\'s webhook '
                         'receiver the same token (monitoring_alertmanager_receivers: type webhook, token: ...)')
    return str(args.get('host', '127.0.0.1')), int(args.get('port', 5050)), str(token)


async def main(queue, args):
    from aiohttp import web  # pylint: disable=import-outside-toplevel

    host, port, token = listen_settings(args)
    guard = RollbackGuard(args.get('ledger'), int(args.get('dispatch_timeout', 1800)),
                          overrides=args.get('overrides'))
    lock = asyncio.Lock()

    async def receive(request):
        if not authorized(request.headers.get('Authorization'), token):
            logger.warning('refused a notification from %s: missing or wrong bearer token', request.remote)
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
                logger.info('alert %s (%s): %s', event['migration']['trigger'], event['alert']['status'],
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

    asyncio.run(main(_Printer(), {'port': int(os.environ.get('PORT', '5050')), 'token': os.environ.get('TOKEN')}))
