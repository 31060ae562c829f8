# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ledger's storage backends: a SQLite file (default) or PostgreSQL (a DSN, for AWX).

Both offer ``transaction(write=...)`` yielding a handle with query/one/execute/insert, and the
same schema (ledger/schema.py). psycopg is imported only for a DSN.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.location import is_dsn


def open_backend(location, create=True):
    """The backend for ``location``: PostgreSQL for a DSN (URI or key/value), SQLite otherwise.

    ``create=False``: a SQLite file that does not exist is not created (LedgerNotFound); a PostgreSQL
    database without the ledger's tables is refused by the ledger's core the same way.
    """
    if is_dsn(location):
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.backends.postgres import (
            PostgresBackend,  # pylint: disable=import-outside-toplevel
        )
        return PostgresBackend(location)
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.backends.sqlite import (
        SQLiteBackend,  # pylint: disable=import-outside-toplevel
    )
    return SQLiteBackend(location, create=create)
