# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The CLI's door to the collection's ledger (plugins/plugin_utils/ledger.py): one place that
opens it and turns its errors into exit codes."""

from __future__ import annotations

import contextlib
from collections import defaultdict

from .errors import BadInput, CliError, Refused


def _module():
    try:
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger
    except ImportError as exc:
        raise CliError(f'cannot import the collection ledger ({exc}); run `make setup`') from None
    return ledger


def resolve_location(explicit=None):
    ledger = _module()
    try:
        return ledger.resolve_ledger_location(explicit)
    except ledger.LedgerError as exc:
        raise BadInput(f'ledger location: {exc}') from None


@contextlib.contextmanager
def opened(location):
    """Open the ledger at ``location`` for the duration of a ``with`` block."""
    ledger = _module()
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
    try:
        ledger = _module()
    except CliError:
        return None
    if isinstance(exc, getattr(ledger, 'LedgerLocked', ())):
        return Refused(f'the ledger is locked: {exc}')
    if isinstance(exc, (getattr(ledger, 'LedgerHalted', ()), getattr(ledger, 'LedgerPaused', ()))):
        return Refused(str(exc))
    if isinstance(exc, ledger.LedgerError):
        return CliError(f'ledger: {exc}')
    return None


def node_states_by_host(handle):
    """host -> list of ledger states of its nodes."""
    out = defaultdict(list)
    for node in handle.nodes():
        out[node['host']].append(node['state'])
    return dict(out)
