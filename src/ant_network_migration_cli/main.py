# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``ant-network-migration``: the operator CLI of the libp2p -> iroh migration.

It runs the collection's playbooks through ansible-runner (the engine AWX uses) and reads the
same ledger as the callback, the gate and AWX jobs.
"""

from __future__ import annotations

import os

import click

from . import (
    cmd_control,
    cmd_dashboard,
    cmd_history,
    cmd_init,
    cmd_observe,
    cmd_preflight,
    cmd_rehearse,
    cmd_start,
    cmd_status,
    common,
    fleet,
    ledger_io,
)
from .errors import EXIT_CODES_HELP

COMPLETION_HELP = """\b
Shell completion (bash, zsh, fish):
  eval "$(_ANT_NETWORK_MIGRATION_COMPLETE=bash_source ant-network-migration)"   # ~/.bashrc
  eval "$(_ANT_NETWORK_MIGRATION_COMPLETE=zsh_source ant-network-migration)"    # ~/.zshrc
  _ANT_NETWORK_MIGRATION_COMPLETE=fish_source ant-network-migration | source     # fish"""

CONTEXT_SETTINGS = {'help_option_names': ['-h', '--help'], 'max_content_width': 110}


class _Group(click.Group):
    """Turns ledger errors raised anywhere in a command into the documented exit codes."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as exc:
            translated = ledger_io.translate(exc)
            if translated is None:
                raise
            raise translated from None


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS, epilog=f'{EXIT_CODES_HELP}\n\n{COMPLETION_HELP}')
@click.option('-i', '--inventory', envvar='ANT_MIGRATION_INVENTORY', show_envvar=True,
              type=click.Path(exists=True), help='Ansible inventory (file or directory) of the fleet. '
              "Default: the plan's inventory, else ansible.cfg's.")
@click.option('--ledger', envvar='ANT_MIGRATION_LEDGER', show_envvar=True, metavar='PATH|DSN',
              help='Ledger: SQLite path or postgresql:// DSN. Default: ansible.cfg '
              '[autonomi_network_migration] ledger, else ~/.local/state/autonomi-network-migration/.')
@click.option('--prometheus-url', envvar='MIGRATION_PROMETHEUS_URL', show_envvar=True, metavar='URL',
              help='Prometheus server for health and metrics (TLS and auth: MIGRATION_PROMETHEUS_* variables, '
              "as for the gate). Default: the inventory's migration_prometheus_url.")
@click.option('-v', '--verbose', 'verbosity', count=True,
              help='More output: -v names artifacts and failures in full, -vv shows Ansible output, -vvv+ '
              'raises Ansible verbosity.')
@click.version_option(package_name='autonomi-network-migration-tools', prog_name='ant-network-migration')
@click.pass_context
def cli(ctx, inventory, ledger, prometheus_url, verbosity):
    """Drive the libp2p -> iroh migration of an Autonomi fleet.

    \b
    Examples:
      ant-network-migration status
      ant-network-migration -i inventories/prod start --plan plan.yml --dry-run
      ant-network-migration pause --reason "investigating latency on sim-host-03"
      ant-network-migration rollback --strategy fast --target libp2p_only --yes
    """
    # One ansible.cfg for the CLI (ledger location) and the runs it starts.
    config = fleet.ansible_config()
    if config:
        os.environ['ANSIBLE_CONFIG'] = config
    ctx.obj = common.Settings(inventory=inventory, ledger=ledger, prometheus_url=prometheus_url, verbosity=verbosity)


for _command in (cmd_init.init, cmd_status.status, cmd_start.start, cmd_control.pause, cmd_control.resume,
                 cmd_control.rollback, cmd_control.unlock, cmd_observe.health, cmd_observe.metrics,
                 cmd_dashboard.dashboard, cmd_preflight.preflight, cmd_history.history,
                 cmd_rehearse.rehearse):
    cli.add_command(_command)


def main():
    cli(prog_name='ant-network-migration')


if __name__ == '__main__':
    main()
