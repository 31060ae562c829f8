# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The CLI's door to the collection's ledger (plugins/plugin_utils/ledger): one place that opens
it, refuses a ledger that does not exist, and turns its errors into exit codes."""

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


def require(location):
    """Refuse (exit 2) a ledger that does not exist. Only `init` creates one: a mistyped --ledger
    must never become a new, empty ledger that a command then reports on or writes to (a `pause`
    recorded there would not pause the real migration)."""
    if not exists(location):
        raise BadInput(f'no ledger at {location}: nothing has been recorded there (a mistyped --ledger, '
                       'ANT_MIGRATION_LEDGER or ansible.cfg `ledger`?). To start a new migration ledger there: '
                       f'ant-network-migration --ledger {location} init')


def _open(location):
    try:
        return ledger.open_ledger(location)
    except ledger.LedgerError as exc:
        raise BadInput(f'cannot open the ledger {location}: {exc}') from None


@contextlib.contextmanager
def opened(location):
    """The existing ledger at ``location`` for the duration of a ``with`` block (BadInput when there
    is none: see require)."""
    require(location)
    handle = _open(location)
    try:
        yield handle
    finally:
        handle.close()


def initialise(location):
    """Create the ledger at ``location`` (the `init` command; an existing one is opened, unchanged)
    and return its progress."""
    handle = _open(location)
    try:
        return handle.progress()
    finally:
        handle.close()


def translate(exc):
    """The CLI error for a ledger exception (None when ``exc`` is not one)."""
    if isinstance(exc, getattr(ledger, 'LedgerLocked', ())):
        return Refused(f'the ledger is locked: {exc}')
    if isinstance(exc, (getattr(ledger, 'LedgerHalted', ()), getattr(ledger, 'LedgerPaused', ()))):
        return Refused(str(exc))
    if isinstance(exc, ledger.LedgerError):
        return CliError(f'ledger: {exc}')
    return None
