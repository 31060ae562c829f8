# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exit codes and the errors that carry them. Every command ends through one of these."""

from __future__ import annotations

import click

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction

EXIT_OK = 0
EXIT_FAILED = 1      # a playbook run (or a check it reports) failed; Prometheus unreachable
EXIT_BAD_INPUT = 2   # invalid options, plan, inventory or ledger location; nothing was run
EXIT_REFUSED = 3     # refused: the migration is paused, halted or locked, or the planner refuses a wave

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  a playbook run failed or halted (the message says why), or Prometheus is unreachable
  2  bad input: options, plan, inventory or ledger location; nothing was run
  3  refused: the migration is paused, halted or locked, or the planner refuses a wave; nothing was run"""


class CliError(click.ClickException):
    """An error shown as ``Error: <message>`` on stderr, exiting with ``exit_code``; never a secret."""

    exit_code = EXIT_FAILED

    def __init__(self, message):
        super().__init__(redaction.redact_text(message))


class RunFailed(CliError):
    exit_code = EXIT_FAILED


class BadInput(CliError):
    exit_code = EXIT_BAD_INPUT


class Refused(CliError):
    exit_code = EXIT_REFUSED
