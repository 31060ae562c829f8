# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.transport_mode: the guard, batch by batch.

Before a host is touched, the guard (plugins/plugin_utils/guard.py) is asked whether this run may
touch it now: not when the migration is paused or halted, the run lock is another run's, the move
would partition the fleet, or this worker's controller is gone. If it may not, the task fails on
the controller and the module never runs on the host. A ledger that cannot be read also refuses
(fail closed); only a collection without the ledger code at all (ImportError) runs unguarded.

With ``batch_size`` > 0 the module gets one node batch at a time and the guard is asked again
before every batch (plugins/plugin_utils/node_batches.py): a worker that outlived a killed
controller stops after the batch in flight and records what it switched.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.node_batches import BatchedSwitch

display = Display()

MODULE = 'autonomi.network_migration.transport_mode'
# Options the action plugin consumes; the module on the host never sees them.
CONTROLLER_OPTIONS = ('ignore_pause', 'ledger')


class LedgerGuard:
    """The guard's verdict on touching a host: ``allowed`` or ``reason`` why not (``refused``: its kind)."""

    def __init__(self, allowed, reason=None, flags=None, location=None, note=None, refused=None):
        self.allowed = allowed
        self.reason = reason
        self.flags = flags or {}
        self.location = location
        self.note = note
        self.refused = refused or (guard.ALLOWED if allowed else 'ledger')


def _read_ledger(explicit_location, with_modes=False):
    """(location, flags, node modes or None, lock) from the ledger. ImportError when the ledger code is absent.

    The node modes ({host/service: mode}) are read only when asked: for a move to iroh_only.
    """
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger import (  # noqa: I001
        open_ledger,
        resolve_ledger_location,
    )
    location = resolve_ledger_location(explicit_location)
    ledger = open_ledger(location)
    try:
        snap = guard.snapshot_of(ledger, with_modes=with_modes)
        return location, snap.flags, snap.node_modes, snap.lock
    finally:
        close = getattr(ledger, 'close', None)
        if close is not None:
            close()


def check_ledger(explicit_location=None, ignore_pause=False, allow_rollback=False, mode=None, host=None,
                 read_ledger=_read_ledger, actor=None):
    """Ask the guard whether the host may be touched; returns a LedgerGuard.

    The decision is guard.decide()'s; this adapter reads the ledger and handles its absence:
    the ledger code is not installed (ImportError): allowed, with a note; anything else going
    wrong while reading the ledger: refused (fail closed).
    """
    try:
        location, flags, fleet_modes, *rest = read_ledger(explicit_location, with_modes=mode == _modes.IROH_ONLY)
    except ImportError as exc:
        return LedgerGuard(True, note=f'no migration ledger available ({exc}); pause/halt not checked')
    except Exception as exc:  # pylint: disable=broad-exception-caught  # fail closed on any ledger error
        return LedgerGuard(False, reason=(
            f'cannot read the migration ledger ({exc.__class__.__name__}: {exc}); refusing to touch the host '
            'because a pause or halt could not be ruled out. Fix the ledger (or pass ledger=<location>) and re-run.'))
    snapshot = guard.Snapshot(flags=flags or {}, lock=rest[0] if rest else None, node_modes=fleet_modes)
    decision = guard.decide(snapshot, actor or guard.Actor.from_environment(), host=host, mode=mode,
                            ignore_pause=ignore_pause, allow_rollback=allow_rollback)
    return LedgerGuard(decision.allowed, reason=decision.reason, flags=snapshot.flags, location=location,
                       note=decision.note, refused=decision.refused)


def record_orphaned(location, host, result):
    """A worker whose controller died records what it switched: nobody else will."""
    try:
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils import (  # noqa: I001
            ledger as ledger_lib,  # pylint: disable=import-outside-toplevel
        )
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import (
            transition_items,  # pylint: disable=import-outside-toplevel
        )
        ledger = ledger_lib.open_ledger(ledger_lib.resolve_ledger_location(location))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        display.warning(f'{MODULE}: controller gone and the ledger cannot be opened to record {host}: {exc}')
        return
    try:
        items = transition_items(host, result)
        for item in items:
            item['reason'] = f"{item['reason']} (recorded by the worker: its controller was gone)"
        run_id = os.environ.get(ledger_lib.ENV_RUN_ID)
        ledger.record_transitions(items, run_id=run_id)
        ledger.record_event('orphan_stopped', run_id=run_id, host=host, switched=result.get('switched') or [],
                            not_switched=result.get('not_switched') or [],
                            controller_pid=guard.Actor.from_environment().controller_pid)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        display.warning(f'{MODULE}: controller gone; could not record {host} in the ledger: {exc}')
    finally:
        ledger.close()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # not used
        module_args = dict(self._task.args)
        for option in CONTROLLER_OPTIONS:
            module_args.pop(option, None)
        try:
            ignore_pause = boolean(self._task.args.get('ignore_pause', False), strict=True)
            allow_rollback = boolean(self._task.args.get('allow_rollback', False), strict=True)
        except TypeError as exc:
            raise AnsibleActionFail(f'ignore_pause and allow_rollback must be booleans: {exc}') from None
        guard_result = check_ledger(self._task.args.get('ledger'), ignore_pause=ignore_pause,
                                    allow_rollback=allow_rollback, mode=self._task.args.get('mode'),
                                    host=(task_vars or {}).get('inventory_hostname'))
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
                              refused=guard_result.refused, mode=self._task.args.get('mode'))
                return result
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        location = self._task.args.get('ledger')
        host = (task_vars or {}).get('inventory_hostname')

        def run_module(args, check_mode):
            saved = self._task.check_mode
            self._task.check_mode = check_mode or saved  # never leave check mode: a preview changes nothing
            try:
                return self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars,
                                            wrap_async=wrap_async)
            finally:
                self._task.check_mode = saved

        def may_continue():
            return check_ledger(location, ignore_pause=ignore_pause, allow_rollback=allow_rollback,
                                mode=self._task.args.get('mode'), host=host)

        try:
            batch_size = 0 if self._task.check_mode or self._task.async_val else int(module_args.get('batch_size') or 0)
        except (TypeError, ValueError):
            batch_size = 0  # the module names the bad value
        switch = BatchedSwitch(run_module, may_continue, batch_size if guard_in_use(guard_result) else 0,
                               controller_alive=lambda: guard.Actor.from_environment().controller_alive,
                               on_orphaned=lambda res: record_orphaned(location, host, res))
        result.update(switch.run(module_args))
        if warnings:
            result['warnings'] = list(result.get('warnings') or []) + warnings
        return result


def guard_in_use(ledger_guard):
    """Batch by batch only when the ledger is there to be asked between the batches."""
    return ledger_guard.location is not None
