# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the migration_tracker callback does, without Ansible: a plain class fed plain data.

The callback plugin (plugins/callback/migration_tracker.py) turns Ansible's events into calls
of MigrationTracker; unit tests call it directly. It records the collection's module results in
the ledger (transitions, observations, gate verdicts, failures), evaluates the thresholds it can
see during a wave and writes the halt mark. It cannot stop a play itself: the transport_mode
guard and the gate read the halt mark and fail (see docs/ledger.md).
"""

from __future__ import annotations

import datetime
import os
import time

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import (
    gate,
    identity,
    redaction,
    run_kinds,
    validation,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.controller import Heartbeat
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import announcements
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.wording import shown

COLLECTION = 'autonomi.network_migration.'
TRANSPORT_MODE = 'transport_mode'
NODE_HEALTH = 'node_health'
TRANSPORT_INFO = 'transport_info'
GATE = 'migration_gate'
LEDGER_ACTION = 'migration_ledger'
OWN_ACTIONS = (TRANSPORT_MODE, NODE_HEALTH, TRANSPORT_INFO, GATE, LEDGER_ACTION, 'migration_wave_plan',
               'canary_analysis')
# Tasks whose failure is a refusal or a verdict, not a broken node: they never count as host failures.
NOT_NODE_FAILURES = (GATE, LEDGER_ACTION, 'migration_wave_plan', 'canary_analysis')
# Task / play variable naming the ledger state the task's nodes reach (e.g. dual_stack_stable).
INTENT_VAR = 'migration_ledger_state'
# Task variable saying why a switch is made, recorded with each node's transition (e.g. "rollback drill").
PURPOSE_VAR = 'migration_ledger_reason'
# Play variable that makes the callback take the run lock for the whole playbook.
LOCK_VAR = 'migration_lock'
HEARTBEAT_EVERY = ledger_lib.HEARTBEAT_EVERY
# Seconds of difference between clocks worth a warning (the gate refuses beyond its rule window).
CLOCK_WARN_SECONDS = 5.0
SOURCE = 'migration_tracker'
# The collection's controller-side actions that may write announced events (a verdict, a halt, a pause, a rollback):
# the events of the run are announced after their results (plugin_utils/services/announcements.py).
ANNOUNCE_AFTER = (GATE, LEDGER_ACTION, 'migration_conclude', 'canary_analysis', 'migration_wave_plan')


def short_action(action):
    """The collection module name of an action (FQCN or short), or None for anything else."""
    if not action:
        return None
    action = str(action)
    if action.startswith(COLLECTION):
        return action[len(COLLECTION):]
    if action.startswith('ansible.legacy.'):
        action = action[len('ansible.legacy.'):]
    return action if action in OWN_ACTIONS else None


def wave_label(kind, extra_vars):
    """What ledger_nodes.wave records for the nodes a run of ``kind`` switches: 'canary' or the wave's percent."""
    if kind == run_kinds.CANARY:
        return 'canary'
    try:
        return str(validation.wave_percent((extra_vars or {}).get('wave')))
    except validation.InputError:
        return None


def default_operator(extra_vars=None):
    """The run's operator: the one derivation in plugin_utils/identity.py."""
    return identity.operator(extra_vars)


def transition_items(host, result, intent=None, wave=None, purpose=None):
    """The ledger transitions of one transport_mode result (what the nodes now run), as
    record_transitions() takes them. Used by the tracker and by a transport_mode worker whose
    controller died (it records what it did itself, nobody else will)."""
    items = []
    for node in result.get('nodes') or []:
        outcome = node.get('result')
        mode = node.get('mode')
        if outcome == 'not_ready' and mode not in _modes.MODES:
            # Restarted in the target mode but never seen ready (a hung process): it is configured for the target.
            mode = result.get('mode')
        if outcome in ('would_switch', 'not_attempted', 'skipped') or mode not in _modes.MODES:
            continue
        if outcome == 'failed' and node.get('restored') is not True:
            continue  # its mode is uncertain; the failure is recorded, reconcile settles the state
        to_state = intent if intent and _modes.STATE_MODE[intent] == mode else None
        if (to_state is None and mode == _modes.LIBP2P_ONLY and outcome in ('switched', 'not_ready')
                and node.get('previous_mode') in _modes.MODES and node['previous_mode'] != mode):
            # The switch saw it run a later mode: rolled back, whether or not the ledger had seen it leave.
            to_state = _modes.STATE_ROLLED_BACK
        if outcome == 'switched':
            reason = f"{node.get('previous_mode')} -> {mode} by transport_mode"
        elif outcome == 'failed':
            reason = f"switch to {result.get('mode')} failed and was restored: {node.get('error')}"
        elif outcome == 'not_ready':
            reason = (f"{node.get('previous_mode')} -> {mode} by transport_mode (rollback), not ready after "
                      f"{node.get('seconds_waited')} s")
        else:
            reason = f'already {mode}'
        if purpose:
            reason = f'{purpose}: {reason}'
        ready = {'switched': True, 'not_ready': False}.get(outcome)
        items.append({'host': host, 'service_name': node.get('service_name'), 'peer_id': node.get('peer_id'),
                      'mode': mode, 'to_state': to_state, 'version': node.get('version'), 'reason': reason,
                      'ready': ready,
                      'seconds_to_ready': node.get('seconds_to_ready') if outcome == 'switched' else None,
                      'wave': wave if outcome == 'switched' else None})
    return items


class TrackerConfig:
    """The callback's options."""

    def __init__(self, ledger=None, failure_budget=5, batch_failure_percent=20.0, halt_on_unhealthy=True,
                 metrics_textfile=None, operator=None, lock_stale_after=ledger_lib.DEFAULT_STALE_AFTER,
                 velocity_window_hours=1.0, announce=False, alertmanager_url=None,
                 announce_timeout=announcements.DEFAULT_TIMEOUT):
        self.ledger = ledger
        self.failure_budget = int(failure_budget)
        self.batch_failure_percent = float(batch_failure_percent)
        self.halt_on_unhealthy = validation.boolean(halt_on_unhealthy, 'halt_on_unhealthy')
        self.metrics_textfile = metrics_textfile or None
        self.operator = operator or None
        self.lock_stale_after = int(lock_stale_after)
        self.velocity_window_hours = float(velocity_window_hours)
        self.announce = validation.boolean(announce, 'announce')
        self.alertmanager_url = str(alertmanager_url).strip() if alertmanager_url else None
        self.announce_timeout = float(announce_timeout)
        if self.announce_timeout <= 0:
            raise ValueError('announce_timeout must be a positive number of seconds, got %r' % (announce_timeout,))


class MigrationTracker:
    """Records a playbook's migration results in the ledger and halts the migration on thresholds.

    ``warn(msg)`` reports problems (the callback passes Display.warning). Ledger errors never
    escape a hook: a broken ledger must not break a play (the guards fail closed on their own).
    """

    def __init__(self, config, warn=None, open_ledger=None, environ=None, clock=None):
        self.config = config
        self._warn = warn or (lambda msg: None)
        self._open = open_ledger or ledger_lib.open_ledger
        self._environ = os.environ if environ is None else environ
        self._clock = clock or time.monotonic
        self.ledger = None
        self.location = None
        self.shown_location = None   # the location as printed: redacted (plugin_utils/redaction.py)
        self.run_id = None
        self.operator = config.operator
        self.playbook = None
        self.inventory_hosts = None   # every host of the playbook's inventory (the callback tells)
        self.kind = run_kinds.OTHER
        self.wave = None
        self.holder = None
        self.slice_key = None
        self.check_mode = False
        self.halted_by_us = None
        self.batch_no = 0
        self.batch_hosts = []
        self.batch_failed = {}
        self.batch_is_migration = False
        self.batch_play = None
        self.transitions = 0
        self.failed_nodes = set()
        self.observations = 0
        self.gate_verdicts = 0
        self.outcome = None
        self._last_heartbeat = 0.0
        self._heartbeat_thread = None
        self._controller_pid = os.getpid()
        self._warned = set()
        self.announcer = None

    def _reset(self):
        """Per-playbook state (one ansible-playbook command may run several playbooks)."""
        self.run_id = self.holder = self.halted_by_us = self.outcome = self.slice_key = None
        self.batch_no = 0
        self.batch_hosts, self.batch_failed, self.batch_is_migration, self.batch_play = [], {}, False, None
        self.transitions = self.observations = self.gate_verdicts = 0
        self.failed_nodes = set()
        self.announcer = None

    # -- helpers -------------------------------------------------------------------------

    def _warn_once(self, key, msg):
        if key not in self._warned:
            self._warned.add(key)
            self._warn(msg)

    def _safe(self, what, func, *args, **kwargs):
        if self.ledger is None:
            return None
        try:
            return func(*args, **kwargs)
        except ledger_lib.LedgerError as exc:
            self._warn_once(what, f'migration_tracker: could not {what} in the ledger {self.shown_location}: '
                                  f'{redaction.redact_text(exc, redaction.location_secrets(self.location))}')
        except Exception as exc:  # pylint: disable=broad-except  # never break the play from a callback
            self._warn_once(what, f'migration_tracker: could not {what} ({exc.__class__.__name__}: '
                                  f'{redaction.redact_text(exc, redaction.location_secrets(self.location))})')
        return None

    # -- playbook ------------------------------------------------------------------------

    def start_playbook(self, playbook, extra_vars=None, lock=False, check_mode=False, kind=None):
        """Open the ledger and the run (of ``kind``, run_kinds: what the playbook declares); take the lock
        when ``lock``.

        Raises LedgerError when the ledger cannot be opened or the lock is refused and ``lock`` is
        set (a migration playbook must not start then); otherwise only warns.
        """
        self._reset()
        self.playbook = str(playbook)
        self.check_mode = bool(check_mode)
        extra_vars = extra_vars or {}
        self.operator = identity.operator(extra_vars, explicit=self.config.operator)
        self.kind = run_kinds.normalise(kind)
        self.wave = wave_label(self.kind, extra_vars)
        try:
            self.location = ledger_lib.resolve_ledger_location(self.config.ledger)
            self.shown_location = redaction.redact_location(self.location)
            self.ledger = self._open(self.location, create=ledger_lib.may_create(extra_vars.get(ledger_lib.INIT_VAR)))
        except ledger_lib.LedgerNotFound as exc:
            if run_kinds.needs_ledger(self.kind):
                raise
            self._warn_once('open', f'migration_tracker: {exc}; this playbook is not recorded')
            self.ledger = None
            return None
        except ledger_lib.LedgerError:
            if lock and not self.check_mode:
                raise
            self._warn_once('open', 'migration_tracker: ledger unavailable, nothing is recorded for this playbook')
            self.ledger = None
            return None
        if self.check_mode:
            return None
        self._safe('compare the clocks', self._clock_against_ledger)
        # A slice of a sliced AWX job joins the job's run and shares its lock (ledger/slices.py).
        self.slice_key = ledger_lib.awx_slice_key(extra_vars)
        if self.slice_key:
            self.run_id = self._safe('join the sliced job\'s run', self.ledger.join_run, self.slice_key,
                                     self.playbook, self.operator, extra_vars, kind=self.kind)
            self._environ[ledger_lib.ENV_LOCK_HOLDER] = ledger_lib.slice_holder(self.slice_key)
        else:
            self.run_id = self._safe('record the run start', self.ledger.start_run, self.playbook, self.operator,
                                     extra_vars, kind=self.kind)
        self._safe('record the failure budget', self.ledger.set_failure_budget, self.config.failure_budget)
        # Before the first worker forks: the workers inherit the mark and the environment that name
        # this controller, so a lock it leaves behind is not taken over while they run (runtime/controller.py).
        ledger_lib.hold_controller_mark()
        self._environ[ledger_lib.ENV_CONTROLLER_PID] = str(os.getpid())
        self._environ[identity.ENV_OPERATOR] = self.operator   # one run, one operator (workers read it)
        self._environ[identity.ENV_WAVE] = self.wave or ''     # the switch records the wave label itself
        if self.run_id is not None:
            self._environ[ledger_lib.ENV_RUN_ID] = str(self.run_id)
        self._environ[ledger_lib.ENV_LEDGER] = self.location
        # The run's lock (this playbook's, or one a role takes) stays alive through long waits: a thread beats.
        self._heartbeat_thread = Heartbeat(self._beat_from_thread, HEARTBEAT_EVERY).start()
        if lock:
            holder = (ledger_lib.slice_holder(self.slice_key) if self.slice_key
                      else ledger_lib.default_holder(self.operator))
            try:
                self.ledger.wait_for_gone_controller(progress=self._warn)
                self.ledger.acquire_lock(holder, self.playbook, stale_after=self.config.lock_stale_after,
                                         run_id=self.run_id)
            except ledger_lib.LedgerLocked:
                self._safe('record the refused run', self.ledger.leave_run if self.slice_key else self.ledger.end_run,
                           self.run_id, 'refused_locked')
                raise
            self.holder = holder
            self._environ[ledger_lib.ENV_LOCK_HOLDER] = holder
        self._start_announcing()
        self._announce()
        return self.run_id

    def end_playbook(self, host_stats=None):
        """Close the run, release the lock, write the metrics file; returns the summary lines."""
        if self.ledger is None:
            return []
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.stop()
            self._heartbeat_thread = None
        host_stats = host_stats or {}
        if not self.check_mode:
            flags = self._safe('read the flags', self.ledger.get_flags) or {}
            failed = any(s.get('failures') or s.get('unreachable') for s in host_stats.values())
            concluded = self._safe('read the conclusion', self._concluded)
            if concluded:
                outcome = run_kinds.run_outcome(concluded)   # the stage said how it ended (migration_conclude)
            elif flags.get('halted') and (self.halted_by_us or self.transitions or self.failed_nodes):
                outcome = 'halted'
            elif failed:
                outcome = 'failed'
            else:
                outcome = 'ok'
            summary = {'transitions': self.transitions, 'failed_nodes': sorted(self.failed_nodes),
                       'observations': self.observations, 'gate_verdicts': self.gate_verdicts,
                       'hosts': {h: dict(s) for h, s in sorted(host_stats.items())}}
            if self.run_id is not None and self.slice_key:
                self._safe('close the run', self.ledger.leave_run, self.run_id, outcome, summary)
            elif self.run_id is not None:
                self._safe('close the run', self.ledger.end_run, self.run_id, outcome, summary)
            self.outcome = outcome
            self._announce()
            if self.holder:
                self._safe('release the lock', self.ledger.release_lock, self.holder, run_id=self.run_id)
            # A lock a role took for this controller (migration_ledger op=lock) ends with the playbook too.
            self._safe('release the lock', self.ledger.release_controller_lock, os.getpid(), run_id=self.run_id,
                       reason='playbook ended')
            self.write_metrics()
        lines = self.summary_lines()
        self._safe('close the ledger', self.ledger.close)
        self.ledger = None
        return lines

    def _clock_against_ledger(self):
        """Warn when the ledger's newest entry is later than now by its own clock: this controller's clock is behind
        the one that wrote it (another controller, or this one before its clock was set back), and the times this
        run records would come before them."""
        latest = self.ledger.events(limit=1)
        if not latest:
            return
        ahead = datetime.datetime.fromisoformat(latest[0]['at']).timestamp() - self.ledger.clock_now()
        if ahead > CLOCK_WARN_SECONDS:
            self._warn(f"migration_tracker: the ledger's newest entry ({latest[0]['kind']} at {latest[0]['at']}) is "
                       f"{ahead:.0f} s later than now by the ledger's clock: a clock was set back or differs. This "
                       'run\'s times would come before it; fix the time (NTP) on every controller.')

    def _outside_inventory(self):
        """{host: [services]} the ledger has beyond libp2p_only on hosts this playbook's inventory lacks."""
        if self.inventory_hosts is None:
            return {}
        known = set(self.inventory_hosts)
        out = {}
        for node in self.ledger.nodes():
            mode = node.get('mode') or _modes.STATE_MODE[node['state']]
            if node['host'] not in known and mode != _modes.LIBP2P_ONLY:
                out.setdefault(node['host'], []).append(node['service_name'])
        return out

    def _concluded(self):
        """The outcome this run's conclusion recorded (run_concluded), or None."""
        if self.run_id is None:
            return None
        events = self.ledger.events(kinds=['run_concluded'], run_id=self.run_id, limit=1)
        return (events[0]['data'] or {}).get('outcome') if events else None

    def write_metrics(self):
        if self.config.metrics_textfile and self.ledger is not None:
            self._safe('write the metrics textfile', self.ledger.write_textfile, self.config.metrics_textfile,
                       window_hours=self.config.velocity_window_hours)

    # -- batches and tasks ---------------------------------------------------------------------

    def start_batch(self, play_name, hosts):
        """A play (or one of its serial batches) starts on ``hosts``; batches are numbered within their play."""
        self.batch_no = self.batch_no + 1 if play_name == self.batch_play else 1
        self.batch_play = play_name
        self.batch_hosts = list(hosts or [])
        self.batch_failed = {}
        self.batch_is_migration = False
        if self.batch_no > 1:
            self.write_metrics()
        self._announce()

    def task_start(self, action):
        """A task starts; a transport_mode task makes the batch a migration batch."""
        if short_action(action) == TRANSPORT_MODE:
            self.batch_is_migration = True
            self._evaluate_batch()
        self._heartbeat()

    def _beat_from_thread(self):
        """One heartbeat on a ledger connection of the thread's own (a connection is not shared across threads)."""
        try:
            with self._open(self.location) as ledger:
                ledger.heartbeat(None, self._controller_pid)
        except Exception as exc:  # pylint: disable=broad-except  # never break the play from a thread
            self._warn_once('heartbeat', f'migration_tracker: could not refresh the lock heartbeat: {exc}')

    def _heartbeat(self):
        now = self._clock()
        if self.ledger is not None and not self.check_mode and now - self._last_heartbeat >= HEARTBEAT_EVERY:
            self._last_heartbeat = now
            self._safe('refresh the lock heartbeat', self.ledger.heartbeat, None, os.getpid())

    # -- results ------------------------------------------------------------------------------

    def result(self, host, action, result, failed=False, ignored=False, task_vars=None, task_name=None):
        """One host's task result (a dict as the module returned it)."""
        if self.ledger is None or self.check_mode:
            return
        self._heartbeat()
        name = short_action(action)
        result = result or {}
        items = result.get('results') if isinstance(result.get('results'), list) else [result]
        for item in items:
            if not isinstance(item, dict):
                continue
            if name == TRANSPORT_MODE:
                self._transport_mode(host, item, task_vars or {})
            elif name == NODE_HEALTH:
                self._node_health(host, item, failed, ignored, task_vars or {})
            elif name == TRANSPORT_INFO:
                self._transport_info(host, item)
            elif name == GATE:
                self._gate(host, item, failed, ignored, task_name)
        if failed and not ignored:
            self.host_failed(host, action, result.get('msg'), result=result, task_name=task_name)
        if str(action or '').rsplit('.', 1)[-1] in ANNOUNCE_AFTER:
            self._announce()

    def host_failed(self, host, action, msg=None, unreachable=False, result=None, task_name=None):
        """A host failed a task (not ignored) or was unreachable."""
        if self.ledger is None or self.check_mode:
            return
        name = short_action(action)
        result = result or {}
        if name in NOT_NODE_FAILURES or 'ledger_flags' in result:
            return  # a refusal (paused / halted / locked) or a verdict, handled elsewhere
        what = 'unreachable' if unreachable else f"failed in task '{task_name or action}'"
        detail = f'{what}: {msg}' if msg else what
        self.batch_failed[host] = detail
        if not self.batch_is_migration:
            return
        nodes = []
        if name == TRANSPORT_MODE:
            nodes = [(n.get('service_name'), n.get('error')) for n in result.get('failed_nodes') or []]
        elif name == NODE_HEALTH:
            nodes = [(n.get('service_name'), 'unhealthy: ' + '; '.join(
                c.get('reason', '') for c in n.get('failed_checks') or []))
                for n in result.get('nodes') or [] if n.get('state') == 'unhealthy']
        if not nodes:
            nodes = [(None, detail)]
        for service, reason in nodes:
            node_id = self._safe('record a failure', self.ledger.record_failure, host, service, reason=reason,
                                 run_id=self.run_id)
            if node_id:
                self.failed_nodes.add(node_id)
        self._evaluate_batch()
        self._evaluate_budget()

    def _intent(self, task_vars):
        state = task_vars.get(INTENT_VAR)
        if state is None:
            return None
        if state not in _modes.STATES:
            self._warn_once('intent', f'migration_tracker: {INTENT_VAR}={state!r} is not a migration state '
                                      f'({", ".join(_modes.STATES)}); ignored')
            return None
        return state

    def _transport_mode(self, host, result, task_vars):
        if result.get('recorded'):
            # The switch recorded its result itself, with its write-ahead intent (services/switch.py).
            self.transitions += int(result.get('recorded_transitions') or 0)
            return
        items = transition_items(host, result, self._intent(task_vars), wave=self.wave)
        if items:
            done = self._safe('record transitions', self.ledger.record_transitions, items, run_id=self.run_id)
            self.transitions += sum(1 for d in done or [] if d['changed'])

    def _node_health(self, host, result, failed, ignored, task_vars):
        items = []
        unhealthy = []
        for node in result.get('nodes') or []:
            if not node.get('service_name'):
                continue
            state = node.get('state')
            if state == 'unhealthy':
                unhealthy.append(node['service_name'])
            items.append({'host': host, 'service_name': node['service_name'], 'peer_id': node.get('peer_id'),
                          'mode': node.get('mode'), 'health': state, 'status': node.get('status'),
                          'data': {'failed_checks': node.get('failed_checks') or [],
                                   'connected_peers': node.get('connected_peers')}})
        if items:
            self._safe('record health observations', self.ledger.record_observations, items, run_id=self.run_id)
            self.observations += len(items)
        intent = self._intent(task_vars)
        if intent:
            promote = [{'host': host, 'service_name': n['service_name'], 'peer_id': n.get('peer_id'),
                        'to_state': intent, 'reason': 'healthy after its soak'}
                       for n in result.get('nodes') or []
                       if n.get('state') == 'healthy' and n.get('mode') == _modes.STATE_MODE[intent]]
            if promote:
                done = self._safe('record transitions', self.ledger.record_transitions, promote, run_id=self.run_id)
                self.transitions += sum(1 for d in done or [] if d['changed'])
        if unhealthy and self.config.halt_on_unhealthy and self.batch_is_migration:
            self.halt(f"{len(unhealthy)} unhealthy node(s) on {host}: {', '.join(sorted(unhealthy))} "
                      f'(halt_on_unhealthy)', nodes=[f'{host}/{s}' for s in sorted(unhealthy)])

    def _transport_info(self, host, result):
        items = [{'host': host, 'service_name': n['service_name'], 'peer_id': n.get('peer_id'),
                  'mode': n.get('mode'), 'version': n.get('version'), 'status': n.get('status')}
                 for n in result.get('nodes') or [] if n.get('service_name') and n.get('status') != 'Removed']
        if items:
            self._safe('record observations', self.ledger.record_observations, items, run_id=self.run_id)
            self.observations += len(items)

    def _gate(self, host, result, failed, ignored, task_name):
        verdict = result.get('verdict') or ('fail' if failed else 'pass')
        if isinstance(result.get('ledger'), dict):
            # Count what the ledger holds: a gate asked with record=false writes no verdict event.
            self.gate_verdicts += 'gate_verdict' in (result['ledger'].get('written') or [])
            # The collection's gate talks to the ledger itself: it records its verdict and writes the
            # halt or pause its policy asks for (or deliberately nothing, with record=false). A failure
            # because the ledger was already halted or paused must not become a new halt here.
            return
        if not (result.get('recorded') or result.get('ledger_event_id')):
            keep = {k: result[k] for k in ('checks', 'failures', 'metric', 'value', 'threshold', 'hosts', 'reasons')
                    if k in result}
            self._safe('record the gate verdict', self.ledger.record_event, 'gate_verdict', run_id=self.run_id,
                       verdict=verdict, host=host, task=task_name, msg=result.get('msg'), source=SOURCE, **keep)
        self.gate_verdicts += 1
        if failed and not ignored and verdict != 'inconclusive' and 'ledger_flags' not in result:
            # A gate that could not judge (Prometheus unavailable: the probe before a batch) is no verdict on the
            # nodes: the halt says so, and the wave freezes instead of rolling back what was judged.
            self.halt(f"gate '{task_name or GATE}' failed: {result.get('msg') or verdict}", source='gate',
                      cause=gate.CAUSE_NO_VERDICT if verdict in gate.NO_VERDICT else None)

    # -- thresholds ----------------------------------------------------------------------------

    def _evaluate_batch(self):
        if not self.batch_is_migration or not self.batch_failed:
            return
        size = len(set(self.batch_hosts) | set(self.batch_failed)) or 1
        percent = 100.0 * len(self.batch_failed) / size
        if percent > self.config.batch_failure_percent:
            hosts = '; '.join(f'{h} ({why})' for h, why in sorted(self.batch_failed.items()))
            self.halt(f"batch {self.batch_no} of play '{self.batch_play}': {len(self.batch_failed)} of {size} "
                      f'host(s) failed or unreachable ({percent:.1f} % > batch_failure_percent '
                      f'{self.config.batch_failure_percent:g}): {hosts}')

    def _evaluate_budget(self):
        total = self._safe('count failures', self.ledger.failures_total)
        if total is not None and total > self.config.failure_budget:
            failed = self._safe('list failures', self.ledger.failures) or []
            self.halt(f'{total} node(s) failed across waves since the budget was last reset, over the failure '
                      f"budget of {self.config.failure_budget}: {shown(failed)}; reset it explicitly "
                      '(playbooks/budget_reset.yml) once the causes are understood')

    def halt(self, reason, source=SOURCE, **data):
        """Write the halt mark (once per run; the first cause is kept by the ledger anyway)."""
        if self.halted_by_us or self.ledger is None:
            return
        self.halted_by_us = reason
        flags = self._safe('write the halt', self.ledger.set_halt, reason, self.operator or SOURCE, source,
                           run_id=self.run_id, playbook=self.playbook, **data)
        if flags is None:
            self._warn(f'migration_tracker: could NOT write the halt to the ledger {self.shown_location}: {reason}')
        else:
            self._warn(f'migration_tracker: migration HALTED: {reason}')
            self._announce()

    # -- announcements ---------------------------------------------------------------------------

    def _start_announcing(self):
        """Opt-in (the ``announce`` option): announce this run's events through Alertmanager."""
        if not self.config.announce or self.run_id is None:
            return
        if not self.config.alertmanager_url:
            self._warn_once('announce', 'migration_tracker: announce is on but no alertmanager_url is set '
                                        '(ANT_MIGRATION_ALERTMANAGER_URL); nothing is announced')
            return
        self.announcer = announcements.Announcer(
            self.config.alertmanager_url, timeout=self.config.announce_timeout, warn=self._warn,
            record=self._record_failed_announcement, secrets=redaction.location_secrets(self.location))

    def _record_failed_announcement(self, error, kinds):
        self._safe('record the failed announcement', self.ledger.record_event, announcements.FAILED_EVENT,
                   run_id=self.run_id, error=error, kinds=kinds,
                   alertmanager=redaction.redact_text(self.config.alertmanager_url))

    def _announce(self):
        """Announce the run's ledger events not announced yet (each once; never raises, never fails the run)."""
        if self.announcer is None or self.ledger is None or self.check_mode:
            return
        events = self._safe('read the events to announce', self.ledger.events, kinds=list(announcements.EVENT_KINDS),
                            run_id=self.run_id, limit=200)
        if events:
            self._safe('announce', self.announcer.announce, events,
                       {'run_id': self.run_id, 'kind': self.kind, 'wave': self.wave})

    # -- summary ---------------------------------------------------------------------------------

    def summary_lines(self):
        """The short migration summary printed at the end of a playbook."""
        if self.ledger is None:
            return []
        prog = self._safe('compute progress', self.ledger.progress, window_hours=self.config.velocity_window_hours)
        flags = self._safe('read the flags', self.ledger.get_flags) or {}
        if prog is None:
            return []
        window = self.config.velocity_window_hours
        lines = [
            f"ledger {self.shown_location}" + (f', run {self.run_id}' if self.run_id is not None else '')
            + (f', outcome {self.outcome}' if self.outcome else ''),
            (f"progress {prog['progress_percent']:.1f} % ({prog['migrated']} of {prog['total']} nodes migrated), "
             f"phase {prog['phase']}, dual-stack coverage {prog['dual_stack_coverage_percent']:.1f} %")
            if prog.get('fleet_read', True) else
            'the ledger has not read the fleet yet: no playbook has looked at its nodes (playbooks/reconcile.yml '
            'reads every host)',
            'nodes: ' + ', '.join(f'{state} {prog["by_state"].get(state, 0)}' for state in _modes.STATES)
            + (f", NOT READY {prog['not_ready']}" if prog.get('not_ready') else ''),
            f"stage {prog['stage']}: {prog['stage_progress_percent']:.1f} % of the nodes at it or beyond, "
            f"{prog['stage_velocity_nodes_per_hour']:g} nodes/h (last {window:g} h)",
            f"velocity {prog['velocity_nodes_per_hour']:g} nodes/h (last {window:g} h), ETA "
            + (prog['eta'].strftime('%Y-%m-%d %H:%M UTC') if prog['eta'] else 'unknown'),
        ]
        if self.run_id is not None:
            lines.append(f'this run: {self.transitions} transition(s), {len(self.failed_nodes)} failed node(s)'
                         + (f', {self.gate_verdicts} gate verdict(s)' if self.gate_verdicts else ''))
        # Flags named as the guard names them (plugin_utils/guard.py), halted first.
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils import (  # noqa: I001
            guard,  # pylint: disable=import-outside-toplevel
        )
        unknown = self._safe('compare the ledger with the inventory', self._outside_inventory) or {}
        if unknown:
            lines.append('NOT IN THE INVENTORY but migrated according to the ledger: ' + '; '.join(
                f"{host} ({', '.join(services)})" for host, services in sorted(unknown.items()))
                + ' -- add them back to the inventory (a rollback cannot reach them otherwise)')
        intents = self._safe('read the intents', self.ledger.intents) or []
        if intents:
            lines.append('UNRECORDED: ' + guard.describe_intents(intents)
                         + ' -- compare with playbooks/reconcile.yml -e fix=true, then resume --ack')
        if flags.get('halted'):
            lines.append(f"HALTED since {flags['halted']['at']}: " + guard.describe_flag('halted', flags['halted'])
                         + ' -- acknowledge with resume --ack once the cause is understood')
        if flags.get('paused'):
            lines.append(f"PAUSED since {flags['paused']['at']}: " + guard.describe_flag('paused', flags['paused']))
        return lines
