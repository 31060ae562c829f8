# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The CLI's door to the collection's ledger (plugins/plugin_utils/ledger.py): one place that
opens it and turns its errors into exit codes."""

from __future__ import annotations

import contextlib

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger
from ant_network_migration_common.ledger_status import exists

from .errors import BadInput, CliError, Refused


def resolve_location(explicit=None):
    try:
        return ledger.resolve_ledger_location(explicit)
    except ledger.LedgerError as exc:
        raise BadInput(f'ledger location: {exc}') from None


class EmptyLedger:
    """What a ledger that does not exist yet says, for read-only commands that must not create
    one (a dry run changes nothing, not even by creating the ledger file)."""

    def __init__(self, location):
        self.location = location

    def get_flags(self):
        return {'paused': None, 'halted': None}

    def lock(self):
        return None

    def live_lock(self):
        return None

    def wait_for_gone_controller(self, timeout=None, progress=None):
        return []

    def nodes(self, states=None, hosts=None):
        return []

    def canary_verdict(self):
        return None

    def switch_times(self, limit=1000):
        return []


@contextlib.contextmanager
def opened(location, create=True):
    """Open the ledger at ``location`` for the duration of a ``with`` block.

    ``create=False``: a SQLite ledger that does not exist yet is not created; BadInput is raised.
    """
    if not create and not exists(location):
        raise BadInput(f'no ledger at {location}: nothing has been recorded there yet '
                       '(check --ledger, ANT_MIGRATION_LEDGER or ansible.cfg)')
    try:
        handle = ledger.open_ledger(location)
    except ledger.LedgerError as exc:
        raise BadInput(f'cannot open the ledger {location}: {exc}') from None
    try:
        yield handle
    finally:
        close = getattr(handle, 'close', None)
        if close:
            close()


def translate(exc):
    """The CLI error for a ledger exception (None when ``exc`` is not one)."""
    if isinstance(exc, getattr(ledger, 'LedgerLocked', ())):
        return Refused(f'the ledger is locked: {exc}')
    if isinstance(exc, (getattr(ledger, 'LedgerHalted', ()), getattr(ledger, 'LedgerPaused', ()))):
        return Refused(str(exc))
    if isinstance(exc, ledger.LedgerError):
        return CliError(f'ledger: {exc}')
    return None
