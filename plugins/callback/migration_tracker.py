# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: migration_tracker
type: aggregate
short_description: Record the migration in the ledger, halt it on thresholds, print its summary
description:
  - Records every result of this collection's modules in the migration ledger (SQLite file or PostgreSQL
    DSN, see the collection's C(docs/ledger.md)) - C(transport_mode) results as node state transitions,
    C(node_health) and C(transport_info) results as observations, C(migration_gate) results as
    C(gate_verdict) events - and opens and closes a run per playbook.
  - Evaluates the thresholds it can see during a wave and writes the halt mark to the ledger - failed or
    unreachable hosts in a batch beyond O(batch_failure_percent), unhealthy nodes (O(halt_on_unhealthy)),
    a failed gate, and more failed nodes across waves than O(failure_budget). A callback cannot stop a
    play reliably, so the C(transport_mode) ledger guard and the gate read the mark and fail.
  - A batch counts for the thresholds once a C(transport_mode) task has started in it; failures of the
    collection's guard and verdict tasks (C(migration_ledger), C(migration_gate)) are not node failures.
  - Takes the run lock for playbooks with a play (or extra) variable C(migration_lock=true) and refuses to
    start them (exit code 1, nothing touched) when another run holds it or the ledger cannot be opened.
    A lock taken for this controller process by a role (C(migration_ledger op=lock)) is kept alive while
    the playbook runs and released when it ends.
  - A task may name the ledger state its nodes reach with the task variable C(migration_ledger_state)
    (for example V(dual_stack_stable) on a C(node_health) task after the soak); otherwise the state follows
    from the node's mode (forward to V(dual_stack) gives V(dual_stack_testing), back to V(libp2p_only)
    gives V(rolled_back)).
  - Prints a short migration summary at the end of the playbook and optionally writes the migration's
    metrics as a Prometheus textfile. In check mode nothing is written.
  - With O(announce) on, announces the run's migration events (run or wave started, batch passed, wave passed,
    canary verdict, halt, pause, resume, rollback, completion) as C(MigrationAnnouncement) alerts to the
    Alertmanager at O(alertmanager_url), which the monitoring role routes to its C(announce) receiver. Each says
    what happened and what comes next, redacted. An announcement that cannot be sent never fails or slows the
    playbook (O(announce_timeout), then one warning and an C(announcement_failed) ledger event; nothing more is
    sent by that playbook). See the collection's C(docs/operator-guide.md), "Announcements".
  - Exports C(ANT_MIGRATION_RUN_ID), C(ANT_MIGRATION_LEDGER), C(ANT_MIGRATION_CONTROLLER_PID) and, when it
    took the lock, C(ANT_MIGRATION_LOCK_HOLDER) to the workers, so action plugins tag their writes with the
    run and know which lock holder is theirs.
requirements:
  - psycopg 3 on the controller for a PostgreSQL ledger
options:
  ledger:
    description:
      - The ledger, a SQLite path or a C(postgresql://) DSN. Relative paths in C(ansible.cfg) are relative to
        that file. Default C(~/.local/state/autonomi-network-migration/ledger.sqlite3).
    type: str
    env:
      - name: ANT_MIGRATION_LEDGER
    ini:
      - section: autonomi_network_migration
        key: ledger
  failure_budget:
    description:
      - How many distinct nodes may fail across waves (since the last acknowledged halt) before the migration
        halts. A failed host without node detail counts as one node (C(host/*)).
    type: int
    default: 5
    env:
      - name: ANT_MIGRATION_FAILURE_BUDGET
    ini:
      - section: autonomi_network_migration
        key: failure_budget
      - section: callback_migration_tracker
        key: failure_budget
  batch_failure_percent:
    description:
      - Halt when more than this percentage of a batch's hosts failed or were unreachable.
    type: float
    default: 20
    env:
      - name: ANT_MIGRATION_BATCH_FAILURE_PERCENT
    ini:
      - section: autonomi_network_migration
        key: batch_failure_percent
      - section: callback_migration_tracker
        key: batch_failure_percent
  halt_on_unhealthy:
    description: Halt when C(node_health) reports an unhealthy node in a migration batch.
    type: bool
    default: true
    env:
      - name: ANT_MIGRATION_HALT_ON_UNHEALTHY
    ini:
      - section: autonomi_network_migration
        key: halt_on_unhealthy
      - section: callback_migration_tracker
        key: halt_on_unhealthy
  metrics_textfile:
    description:
      - Write the migration's metrics (C(autonomi_migration_*)) to this file in the Prometheus text format after
        every batch and at the end, atomically (for node_exporter's textfile collector). Not written when unset.
    type: path
    env:
      - name: ANT_MIGRATION_METRICS_TEXTFILE
    ini:
      - section: autonomi_network_migration
        key: metrics_textfile
      - section: callback_migration_tracker
        key: metrics_textfile
  operator:
    description:
      - Who runs the migration, recorded with runs and halts. Default the AWX user (C(awx_user_name)) or the OS
        user.
    type: str
    env:
      - name: ANT_MIGRATION_OPERATOR
    ini:
      - section: autonomi_network_migration
        key: operator
  lock_stale_after:
    description: Seconds without a heartbeat after which another run may take over the lock (logged).
    type: int
    default: 900
    env:
      - name: ANT_MIGRATION_LOCK_STALE_AFTER
    ini:
      - section: autonomi_network_migration
        key: lock_stale_after
  velocity_window_hours:
    description: The window of the velocity (nodes per hour) and so of the ETA.
    type: float
    default: 1.0
    env:
      - name: ANT_MIGRATION_VELOCITY_WINDOW_HOURS
    ini:
      - section: autonomi_network_migration
        key: velocity_window_hours
  announce:
    description:
      - Announce the migration's events through Alertmanager (O(alertmanager_url)). Off by default; a controller
        setting, not a play variable (an extra var cannot turn it on or point it elsewhere).
    type: bool
    default: false
    env:
      - name: ANT_MIGRATION_ANNOUNCE
    ini:
      - section: autonomi_network_migration
        key: announce
  alertmanager_url:
    description:
      - The Alertmanager that receives the announcements (the monitoring role's C(monitoring_alertmanager_url)).
        Shown redacted.
    type: str
    env:
      - name: ANT_MIGRATION_ALERTMANAGER_URL
    ini:
      - section: autonomi_network_migration
        key: alertmanager_url
  announce_timeout:
    description: Seconds one announcement may take before it is given up (and no further one is tried).
    type: float
    default: 3.0
    env:
      - name: ANT_MIGRATION_ANNOUNCE_TIMEOUT
    ini:
      - section: autonomi_network_migration
        key: announce_timeout
"""

EXAMPLES = r"""
# ansible.cfg
# [defaults]
# callbacks_enabled = autonomi.network_migration.migration_tracker
# [autonomi_network_migration]
# ledger = .state/ledger.sqlite3
# failure_budget = 10
# metrics_textfile = /var/lib/node_exporter/textfile/autonomi_migration.prom
# announce = true
# alertmanager_url = http://alertmanager.example.org:9093

# A play that takes the run lock for the whole playbook:
# - name: Roll back everything
#   hosts: fleet
#   vars:
#     migration_lock: true
"""

from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction, run_kinds, validation
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import (
    LOCK_VAR,
    MigrationTracker,
    TrackerConfig,
)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'autonomi.network_migration.migration_tracker'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tracker = None

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        ledger, origin = self.get_option_and_origin('ledger')
        # env and ini values go through the ledger's own resolution (relative to ansible.cfg, ...).
        explicit = ledger if origin == 'direct' else None
        self.tracker = MigrationTracker(TrackerConfig(
            ledger=explicit,
            failure_budget=self.get_option('failure_budget'),
            batch_failure_percent=self.get_option('batch_failure_percent'),
            halt_on_unhealthy=self.get_option('halt_on_unhealthy'),
            metrics_textfile=self.get_option('metrics_textfile'),
            operator=self.get_option('operator'),
            lock_stale_after=self.get_option('lock_stale_after'),
            velocity_window_hours=self.get_option('velocity_window_hours'),
            announce=self.get_option('announce'),
            alertmanager_url=self.get_option('alertmanager_url'),
            announce_timeout=self.get_option('announce_timeout'),
        ), warn=self._display.warning)

    # -- playbook ---------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        if self.tracker is None:
            self.set_options()
        plays = playbook.get_plays()
        extra_vars = {}
        if plays and plays[0].get_variable_manager() is not None:
            extra_vars = dict(plays[0].get_variable_manager().extra_vars)
        try:
            lock = validation.boolean(extra_vars.get(LOCK_VAR, False), LOCK_VAR) or any(
                validation.boolean((play.vars or {}).get(LOCK_VAR, False), LOCK_VAR) for play in plays)
            self.tracker.start_playbook(playbook._file_name, extra_vars=extra_vars, lock=lock,
                                        check_mode=bool(context.CLIARGS.get('check')),
                                        kind=run_kinds.declared_kind(plays))
            inventory = getattr(plays[0].get_variable_manager(), '_inventory', None) if plays else None
            if inventory is not None:
                self.tracker.inventory_hosts = [host.name for host in inventory.get_hosts('all')]
        except (ledger_lib.LedgerError, ValueError) as exc:
            # Nothing has run yet: stopping here is clean, and a migration playbook must not start.
            self._display.error(f'migration_tracker: {redaction.redact_text(exc)}. The playbook was not started; '
                                'nothing was touched.')
            raise SystemExit(1) from None

    def v2_playbook_on_play_start(self, play):
        hosts = []
        manager = play.get_variable_manager()
        inventory = getattr(manager, '_inventory', None)
        if inventory is not None:
            try:
                hosts = [h.name for h in inventory.get_hosts(play.hosts)]
            except Exception:  # pylint: disable=broad-except  # batch size is best effort
                hosts = []
        self.tracker.start_batch(play.get_name(), hosts)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.tracker.task_start(self._action(task))

    def v2_playbook_on_handler_task_start(self, task):
        self.tracker.task_start(self._action(task))

    def v2_playbook_on_stats(self, stats):
        host_stats = {host: stats.summarize(host) for host in sorted(stats.processed.keys())}
        lines = self.tracker.end_playbook(host_stats)
        if lines:
            self._display.banner('MIGRATION SUMMARY')
            for line in lines:
                color = 'bright red' if line.startswith('HALTED') else (
                    'bright yellow' if line.startswith('PAUSED') else None)
                self._display.display(line, color=color)

    # -- results ------------------------------------------------------------------------------

    @staticmethod
    def _action(task):
        # resolved_action is reliable in the runner hooks; task.action is the fallback.
        try:
            return task.resolved_action or task.action
        except Exception:  # pylint: disable=broad-except
            return task.action

    @staticmethod
    def _task_vars(task):
        try:
            return dict(task.vars or {})
        except Exception:  # pylint: disable=broad-except
            return {}

    def v2_runner_on_ok(self, result):
        self.tracker.result(result.host.get_name(), self._action(result.task), result.result,
                            task_vars=self._task_vars(result.task), task_name=result.task.get_name())

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self.tracker.result(result.host.get_name(), self._action(result.task), result.result, failed=True,
                            ignored=bool(ignore_errors), task_vars=self._task_vars(result.task),
                            task_name=result.task.get_name())

    def v2_runner_on_unreachable(self, result):
        self.tracker.host_failed(result.host.get_name(), self._action(result.task), result.result.get('msg'),
                                 unreachable=True, task_name=result.task.get_name())
