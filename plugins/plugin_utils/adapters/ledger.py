# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ledger, opened for one use case by an adapter (action plugin, CLI, dashboard, EDA source)."""

from __future__ import annotations

import contextlib

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction


@contextlib.contextmanager
def opened_ledger(location=None):
    """The ledger at ``location`` (resolved as everywhere: explicit, ANT_MIGRATION_LEDGER, ansible.cfg),
    closed afterwards. A ledger that cannot be opened raises a LedgerError whose message is safe to show."""
    try:
        handle = ledger_lib.open_ledger(ledger_lib.resolve_ledger_location(location))
    except ledger_lib.LedgerError as exc:
        raise ledger_lib.LedgerUnavailable('migration ledger unusable: %s' % redaction.redact_text(exc)) from None
    try:
        yield handle
    finally:
        handle.close()
