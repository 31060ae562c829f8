# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.transport_mode: the guard, batch by batch.

Before a host is touched, the guard is asked (services/switch.py may_touch()) whether this run may touch
it now: not when the migration is paused or halted, the run lock is another run's, the move would
partition the fleet, or this worker's controller is gone. If it may not, the task fails on the
controller and the module never runs on the host.

With ``batch_size`` > 0 the module gets one node batch at a time and the guard is asked again before
every batch (plugins/plugin_utils/node_batches.py): a worker that outlived a killed controller stops
after the batch in flight and records what it switched.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard, identity, validation
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.action import LEDGER_VAR
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.node_batches import BatchedSwitch
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import INTENT_VAR, PURPOSE_VAR
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services.switch import (
    MODULE,
    begin,
    finish,
    may_touch,
)

display = Display()

# Options the action plugin consumes; the module on the host never sees them.
CONTROLLER_OPTIONS = ('ignore_pause', 'ledger')


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # not used
        task_vars = task_vars or {}
        module_args = dict(self._task.args)
        for option in CONTROLLER_OPTIONS:
            module_args.pop(option, None)
        try:
            ignore_pause = validation.boolean(self._task.args.get('ignore_pause', False), 'ignore_pause')
            allow_rollback = validation.boolean(self._task.args.get('allow_rollback', False), 'allow_rollback')
        except validation.InputError as exc:
            raise AnsibleActionFail(f'{MODULE}: {exc}') from None
        location = self._task.args.get('ledger') or self._templar.template(task_vars.get(LEDGER_VAR)) or None
        host = task_vars.get('inventory_hostname')
        mode = self._task.args.get('mode')

        def may_continue():
            return may_touch(location, ignore_pause=ignore_pause, allow_rollback=allow_rollback, mode=mode, host=host)

        guard_result = may_continue()
        warnings = []
        if guard_result.note:
            display.vv(f'{MODULE}: {guard_result.note}')
            if guard_result.flags:
                warnings.append(guard_result.note)
        if not guard_result.allowed:
            if self._task.check_mode and guard_result.flags:
                # Nothing is touched in check mode: preview, but say loudly that a real run would refuse.
                warnings.append(f'a real run would refuse: {guard_result.reason}')
            else:
                result.update(failed=True, changed=False, msg=guard_result.reason, ledger_flags=guard_result.flags,
                              refused=guard_result.refused, mode=mode)
                return result
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async

        def run_module(args, check_mode):
            saved = self._task.check_mode
            self._task.check_mode = check_mode or saved  # never leave check mode: a preview changes nothing
            try:
                return self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars,
                                            wrap_async=wrap_async)
            finally:
                self._task.check_mode = saved

        try:
            batch_size = 0 if self._task.check_mode or self._task.async_val else int(module_args.get('batch_size') or 0)
        except (TypeError, ValueError):
            batch_size = 0  # the module names the bad value
        # Write-ahead: the ledger knows a host is about to be switched before anything touches it, and the
        # switch's result is recorded here, not later: a ledger that cannot be written stops the batch at once.
        recording = guard_result.location is not None and not self._task.check_mode
        if recording:
            refused = begin(location, host, mode)
            if refused:
                return dict(result, failed=True, changed=False, msg=refused, refused='ledger', mode=mode)
        # Batch by batch only when the ledger is there to be asked between the batches.
        switch = BatchedSwitch(run_module, may_continue, batch_size if guard_result.location is not None else 0,
                               controller_alive=lambda: guard.Actor.from_environment().controller_alive)
        result.update(switch.run(module_args))
        if recording:
            wave = os.environ.get(identity.ENV_WAVE) or None
            result['recorded_transitions'], error = finish(location, host, result, intent=task_vars.get(INTENT_VAR),
                                                           wave=wave, orphaned=bool(result.get('orphaned')),
                                                           purpose=task_vars.get(PURPOSE_VAR))
            result['recorded'] = error is None
            if error:
                result.update(failed=True, refused='ledger', msg=f"{result.get('msg') or 'switched'}; {error}")
        if warnings:
            result['warnings'] = list(result.get('warnings') or []) + warnings
        return result
