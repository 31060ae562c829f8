# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.transport_mode: the ledger guard.

Before a host is touched, the migration ledger is asked whether the migration is paused or
halted. If it is, the task fails on the controller and the module never runs on the host.
A ledger that cannot be read also refuses (fail closed); only a collection without the
ledger code at all (ImportError) runs unguarded.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes

display = Display()

MODULE = 'autonomi.network_migration.transport_mode'
# Options the action plugin consumes; the module on the host never sees them.
CONTROLLER_OPTIONS = ('ignore_pause', 'ledger')


class LedgerGuard:
    """The verdict of the ledger on touching a host: ``allowed`` or ``reason`` why not."""

    def __init__(self, allowed, reason=None, flags=None, location=None, note=None):
        self.allowed = allowed
        self.reason = reason
        self.flags = flags or {}
        self.location = location
        self.note = note


def _describe(word, flag):
    who = flag.get('operator') or 'unknown operator'
    when = flag.get('at') or 'unknown time'
    text = f"the migration is {word} ({flag.get('reason') or 'no reason given'}; by {who} at {when}"
    if flag.get('source'):
        text += f", source {flag['source']}"
    return text + ')'


def _read_ledger(explicit_location, with_modes=False):
    """(location, flags, node modes or None) from the ledger. ImportError when the ledger code is absent.

    The node modes ({host/service: mode}) are read only when asked: for a move to iroh_only.
    """
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger import (  # noqa: I001
        open_ledger,
        resolve_ledger_location,
    )
    location = resolve_ledger_location(explicit_location)
    ledger = open_ledger(location)
    try:
        return location, ledger.get_flags(), (ledger.node_modes() if with_modes else None)
    finally:
        close = getattr(ledger, 'close', None)
        if close is not None:
            close()


def check_ledger(explicit_location=None, ignore_pause=False, allow_rollback=False, mode=None, host=None,
                 read_ledger=_read_ledger):
    """Ask the ledger whether the host may be touched; returns a LedgerGuard.

    - paused: refused unless ``ignore_pause``;
    - halted: refused unless ``ignore_pause`` and ``allow_rollback`` (a rollback must always work);
    - ``mode`` iroh_only: refused while the ledger knows a node of another host in libp2p_only
      (the module checks the host's own nodes live; the fleet is only visible here);
    - the ledger code is not installed (ImportError): allowed, with a note;
    - anything else going wrong while reading the ledger: refused (fail closed).
    """
    to_iroh_only = mode == _modes.IROH_ONLY
    try:
        location, flags, fleet_modes = read_ledger(explicit_location, with_modes=to_iroh_only)
    except ImportError as exc:
        return LedgerGuard(True, note=f'no migration ledger available ({exc}); pause/halt not checked')
    except Exception as exc:  # pylint: disable=broad-exception-caught  # fail closed on any ledger error
        return LedgerGuard(False, reason=(
            f'cannot read the migration ledger ({exc.__class__.__name__}: {exc}); refusing to touch the host '
            'because a pause or halt could not be ruled out. Fix the ledger (or pass ledger=<location>) and re-run.'))
    flags = flags or {}
    halted, paused = flags.get('halted'), flags.get('paused')
    if halted:
        if ignore_pause and allow_rollback:
            return LedgerGuard(True, flags=flags, location=location,
                               note=_describe('halted', halted) + '; ignored for a rollback')
        return LedgerGuard(False, flags=flags, location=location, reason=(
            _describe('halted', halted) + '; not touching this host. Investigate and clear the halt, '
            'or run a rollback (allow_rollback=true, ignore_pause=true).'))
    if paused and not ignore_pause:
        return LedgerGuard(False, flags=flags, location=location, reason=(
            _describe('paused', paused) + '; not touching this host. Resume the migration first.'))
    if to_iroh_only:
        others = {node: node_mode for node, node_mode in (fleet_modes or {}).items()
                  if not (host and node.startswith(f'{host}/'))}
        blockers = _modes.partition_violations(_modes.IROH_ONLY, others)
        if blockers:
            shown = ', '.join(blockers[:10]) + (f' and {len(blockers) - 10} more' if len(blockers) > 10 else '')
            return LedgerGuard(False, flags=flags, location=location, reason=(
                f'cannot switch to iroh_only while {len(blockers)} node(s) of the fleet still run libp2p_only '
                f'according to the ledger ({shown}); iroh_only and libp2p_only nodes cannot reach each other'))
    if paused:
        return LedgerGuard(True, flags=flags, location=location,
                           note=_describe('paused', paused) + '; ignored (ignore_pause=true)')
    return LedgerGuard(True, flags=flags, location=location)


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
        guard = check_ledger(self._task.args.get('ledger'), ignore_pause=ignore_pause,
                             allow_rollback=allow_rollback, mode=self._task.args.get('mode'),
                             host=(task_vars or {}).get('inventory_hostname'))
        warnings = []
        if guard.note:
            display.vv(f'{MODULE}: {guard.note}')
            if guard.flags:
                warnings.append(guard.note)
        if not guard.allowed:
            if self._task.check_mode and guard.flags:
                # Nothing is touched in check mode: preview, but say loudly that a real run would refuse.
                warnings.append(f'a real run would refuse: {guard.reason}')
            else:
                result.update(failed=True, changed=False, msg=guard.reason, ledger_flags=guard.flags,
                              mode=self._task.args.get('mode'))
                return result
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result.update(self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars,
                                           wrap_async=wrap_async))
        if warnings:
            result['warnings'] = list(result.get('warnings') or []) + warnings
        return result
