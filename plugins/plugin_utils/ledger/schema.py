# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ledger schema and its forward migrations, shared by the SQLite and PostgreSQL backends.

Each entry of MIGRATIONS brings the schema from version N-1 to N and runs in one transaction
with the version bump, so a ledger is always at exactly one known version. Statements use
``{pk}`` (auto-increment primary key), ``{real}`` (double precision) and ``{bigint}``; the
backend fills them in for its dialect. Timestamps are stored as UTC epoch seconds so that both
backends compare and order them the same way.
"""

from __future__ import annotations

APPLICATION = 'autonomi.network_migration.ledger'
# PRAGMA application_id of a SQLite ledger ("ANML"), so `file` and sqlite tools recognise it.
SQLITE_APPLICATION_ID = 0x414E4D4C
META_TABLE = 'ledger_meta'

DIALECT_TYPES = {
    'sqlite': {'pk': 'INTEGER PRIMARY KEY AUTOINCREMENT', 'real': 'REAL', 'bigint': 'INTEGER'},
    'postgresql': {'pk': 'BIGSERIAL PRIMARY KEY', 'real': 'DOUBLE PRECISION', 'bigint': 'BIGINT'},
}

_V1 = (
    """CREATE TABLE ledger_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
    """CREATE TABLE ledger_runs (
        id {pk},
        playbook TEXT NOT NULL,
        operator TEXT NOT NULL,
        controller TEXT,
        pid {bigint},
        extra_vars TEXT NOT NULL DEFAULT '{{}}',
        started_at {real} NOT NULL,
        ended_at {real},
        outcome TEXT,
        summary TEXT)""",
    """CREATE TABLE ledger_nodes (
        node_id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        service_name TEXT NOT NULL,
        peer_id TEXT,
        state TEXT NOT NULL,
        mode TEXT,
        version TEXT,
        wave TEXT,
        run_id {bigint},
        updated_at {real} NOT NULL,
        health TEXT,
        health_at {real},
        health_data TEXT)""",
    "CREATE INDEX ledger_nodes_host ON ledger_nodes (host)",
    "CREATE INDEX ledger_nodes_state ON ledger_nodes (state)",
    """CREATE TABLE ledger_node_history (
        id {pk},
        node_id TEXT NOT NULL,
        host TEXT NOT NULL,
        service_name TEXT NOT NULL,
        peer_id TEXT,
        from_state TEXT,
        to_state TEXT NOT NULL,
        from_mode TEXT,
        to_mode TEXT,
        version TEXT,
        at {real} NOT NULL,
        run_id {bigint},
        reason TEXT)""",
    "CREATE INDEX ledger_node_history_node ON ledger_node_history (node_id, at)",
    "CREATE INDEX ledger_node_history_at ON ledger_node_history (at)",
    """CREATE TABLE ledger_events (
        id {pk},
        kind TEXT NOT NULL,
        at {real} NOT NULL,
        run_id {bigint},
        data TEXT NOT NULL DEFAULT '{{}}')""",
    "CREATE INDEX ledger_events_kind ON ledger_events (kind, at)",
    """CREATE TABLE ledger_failures (
        id {pk},
        node_id TEXT NOT NULL,
        host TEXT NOT NULL,
        service_name TEXT,
        at {real} NOT NULL,
        run_id {bigint},
        reason TEXT)""",
    "CREATE INDEX ledger_failures_at ON ledger_failures (at)",
    """CREATE TABLE ledger_flags (
        name TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        operator TEXT NOT NULL,
        source TEXT,
        at {real} NOT NULL,
        run_id {bigint})""",
    """CREATE TABLE ledger_canary (
        id INTEGER PRIMARY KEY,
        verdict TEXT NOT NULL,
        at {real} NOT NULL,
        run_id {bigint},
        data TEXT NOT NULL DEFAULT '{{}}')""",
    # One row, always present: holder NULL means free. Writers serialise on it.
    """CREATE TABLE ledger_lock (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        holder TEXT,
        holder_host TEXT,
        holder_pid {bigint},
        playbook TEXT,
        run_id {bigint},
        started_at {real},
        heartbeat_at {real})""",
    "INSERT INTO ledger_lock (id) VALUES (1)",
)

# v2: the seconds a node took to be ready after a switch (the fast-rollback projection uses them).
_V2 = (
    'ALTER TABLE ledger_node_history ADD COLUMN seconds_to_ready {real}',
)

# v3: why the migration was halted (``verdict``: a judgment on the nodes; ``no_verdict``: nobody could
# judge them, e.g. monitoring down), so containment rolls back only on a verdict.
_V3 = (
    'ALTER TABLE ledger_flags ADD COLUMN cause TEXT',
)

# v4: since when a node has been switched forward without a verdict (any stage, not only dual_stack:
# a promote interrupted mid-batch leaves iroh_primary nodes nobody judged). NULL once a gate passed
# them or they went back. Nodes already in dual_stack_testing are exactly that.
_V4 = (
    'ALTER TABLE ledger_nodes ADD COLUMN unjudged_since {real}',
    "UPDATE ledger_nodes SET unjudged_since = updated_at WHERE state = 'dual_stack_testing'",
)

# v5: what kind of run a run is (plugins/plugin_utils/run_kinds.py), declared by its playbook and recorded
# at its start; runs recorded before carry NULL (read as "other").
_V5 = (
    'ALTER TABLE ledger_runs ADD COLUMN kind TEXT',
)

# v6: the record follows what was done (issue: the record is the truth).
# - ledger_nodes.ready: whether the node became ready in the mode it was configured for (1, 0; NULL unknown);
# - ledger_intents: a host is about to be switched (write-ahead); the row goes in the transaction that
#   records the result. One left behind means nobody knows what that switch did: the guard treats it as a halt;
# - ledger_runs.clock_offset: this controller's clock minus Prometheus' (seconds), measured at the run's gate.
_V6 = (
    'ALTER TABLE ledger_nodes ADD COLUMN ready INTEGER',
    """CREATE TABLE ledger_intents (
        host TEXT PRIMARY KEY,
        mode TEXT NOT NULL,
        run_id {bigint},
        holder TEXT,
        at {real} NOT NULL)""",
    'ALTER TABLE ledger_runs ADD COLUMN clock_offset {real}',
)

# version -> statements that bring the schema from version-1 to version.
MIGRATIONS = {
    1: _V1,
    2: _V2,
    3: _V3,
    4: _V4,
    5: _V5,
    6: _V6,
}
SCHEMA_VERSION = max(MIGRATIONS)


def statements(version, dialect):
    """The statements of one migration step, rendered for a dialect."""
    types = DIALECT_TYPES[dialect]
    return [stmt.format(**types) for stmt in MIGRATIONS[version]]
