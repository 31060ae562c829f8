# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ledger's exceptions: one hierarchy, each message says what, where and what to do."""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError


class LedgerError(MigrationError):
    """Base class of every ledger error."""


class LedgerUnavailable(LedgerError):
    """The ledger cannot be opened or reached (missing driver, unreadable file, wrong DSN)."""


class LedgerNotFound(LedgerUnavailable):
    """No ledger exists at the location and this run may not create one (a mistyped location)."""


class LedgerForeignDatabase(LedgerError):
    """The location holds something that is not a migration ledger (garbage, another database)."""


class LedgerSchemaTooNew(LedgerError):
    """The ledger was written by a newer collection whose schema this one does not know."""


class LedgerLocked(LedgerError):
    """Another run holds the run lock."""

    def __init__(self, message, holder=None, started_at=None, playbook=None, run_id=None):
        super().__init__(message)
        self.holder = holder
        self.started_at = started_at
        self.playbook = playbook
        self.run_id = run_id


class LedgerHalted(LedgerError):
    """The migration is halted; an operator must acknowledge the halt before it continues."""


class LedgerPaused(LedgerError):
    """The migration is paused by an operator."""


class HaltNeedsAcknowledgement(LedgerHalted):
    """resume() without ack=True while a halt is set."""
