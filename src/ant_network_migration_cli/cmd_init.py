# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``init``: create the migration ledger, the one command that may (every other refuses a ledger
that does not exist, so that a mistyped location is an error, not a new ledger)."""

from __future__ import annotations

import click

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction

from . import common, ledger_io
from .errors import EXIT_CODES_HELP


@click.command(epilog=EXIT_CODES_HELP)
@click.pass_obj
def init(settings):
    """Create the migration ledger at the ledger location (--ledger, ANT_MIGRATION_LEDGER, ansible.cfg).

    Every other command refuses a ledger that does not exist (a typo must not start a new, empty
    ledger). A ledger that exists already is left as it is.

    \b
    Examples:
      ant-network-migration --ledger /var/lib/ant-migration/ledger.sqlite3 init
      ant-network-migration --ledger postgresql://migrator@db.example/migration init
    """
    location = settings.ledger_location()
    existed = ledger_io.exists(location)
    progress = ledger_io.initialise(location)
    console = common.make_console()
    shown = redaction.redact_location(location)
    if existed:
        console.print(f"ledger {shown} is ready ({progress.get('total', 0)} nodes recorded)", markup=False)
    else:
        console.print(f'created the ledger {shown}', markup=False)
