# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration ledger: every node's migration state, its history, runs, events, flags, the lock.

One implementation used by the migration_tracker callback, the gate and guard action plugins and
the operator CLI. Two backends with the same schema and behaviour: a SQLite file (the default)
and PostgreSQL (a ``postgresql://`` DSN, for AWX). See docs/ledger.md.

    ledger = open_ledger(resolve_ledger_location())
    ledger.record_transition('host-1', 'antnode3', '12D3KooW...', 'dual_stack_testing', run_id=run)
    ledger.progress()['progress_percent']

Every public write is one transaction: a controller killed at any moment leaves either the whole
write or none of it.

The package is split by job (docs/ledger.md): ``core`` (backend, schema migration), ``runs``,
``nodes``, ``control`` (pause, halt, lock), ``events``, ``metrics``, ``backends`` (SQLite,
PostgreSQL), ``location``, ``schema`` and ``errors``.
``from ...plugin_utils import ledger`` gives every public name.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.identity import (
    awx_slice_key,
    slice_holder,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger._common import (
    ENV_CONTROLLER_PID,
    ENV_LOCK_HOLDER,
    ENV_RUN_ID,
    REDACTED,
    controller_pid,
    default_holder,
    redact,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.backends import (
    open_backend,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.control import (
    DEFAULT_STALE_AFTER,
    HEARTBEAT_DEAD,
    HEARTBEAT_EVERY,
    ControlMixin,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.core import (
    LedgerCore,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.errors import (
    HaltNeedsAcknowledgement,
    LedgerError,
    LedgerForeignDatabase,
    LedgerHalted,
    LedgerLocked,
    LedgerNotFound,
    LedgerPaused,
    LedgerSchemaTooNew,
    LedgerUnavailable,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.events import (
    EVENT_KINDS,
    EventsMixin,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.location import (
    DEFAULT_LEDGER,
    DSN_PREFIXES,
    ENV_LEDGER,
    ENV_LEDGER_INIT,
    INI_KEY,
    INI_SECTION,
    INIT_VAR,
    is_dsn,
    may_create,
    resolve_ledger_location,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.metrics import (
    MetricsMixin,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.nodes import (
    NodesMixin,
    node_id_for,
    state_for_mode,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.runs import (
    RunsMixin,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.schema import (
    SCHEMA_VERSION,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.slices import (
    SlicesMixin,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.controller import hold_controller_mark

__all__ = [
    'DEFAULT_LEDGER', 'DEFAULT_STALE_AFTER', 'HEARTBEAT_DEAD', 'HEARTBEAT_EVERY',
    'DSN_PREFIXES', 'ENV_CONTROLLER_PID', 'ENV_LEDGER', 'ENV_LEDGER_INIT', 'ENV_LOCK_HOLDER',
    'ENV_RUN_ID', 'INI_KEY', 'INI_SECTION', 'INIT_VAR',
    'EVENT_KINDS', 'controller_pid', 'hold_controller_mark', 'node_id_for',
    'HaltNeedsAcknowledgement', 'Ledger', 'LedgerError', 'LedgerForeignDatabase', 'LedgerHalted',
    'LedgerLocked', 'LedgerNotFound', 'LedgerPaused', 'LedgerSchemaTooNew', 'LedgerUnavailable', 'REDACTED',
    'SCHEMA_VERSION',
    'awx_slice_key', 'slice_holder',
    'default_holder', 'is_dsn', 'may_create', 'open_ledger', 'redact', 'resolve_ledger_location', 'state_for_mode',
]


class Ledger(RunsMixin, SlicesMixin, NodesMixin, ControlMixin, EventsMixin, MetricsMixin, LedgerCore):
    """The migration ledger over one backend (SQLite or PostgreSQL). Use open_ledger()."""


def open_ledger(location=None, clock=None, create=None):
    """Open (migrating forward if needed) the ledger at ``location``.

    ``location`` defaults to resolve_ledger_location(). A location where no ledger exists yet is created
    only with ``create=True``; ``create=None`` (the default) asks may_create(), i.e. the environment's
    ANT_MIGRATION_LEDGER_INIT: by default it raises LedgerNotFound, so a mistyped location never becomes a
    new, empty ledger. Raises a LedgerError subclass with a clear message for an unreachable ledger, a
    foreign file or a schema from the future.
    """
    if create is None:
        create = may_create()
    backend = open_backend(location or resolve_ledger_location(), create=create)
    try:
        return Ledger(backend, clock=clock, create=create)
    except BaseException:
        backend.close()
        raise
