"""Helpers of the trust-boundary tests: the fleet's host names, a static inventory, the CLI as a command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).parent / 'ant-network-migration'
HOSTS = [f'sim-host-{i:02d}' for i in range(1, 5)]


def inventory_text(hosts=HOSTS):
    lines = ['all:', '  children:', '    fleet:', '      hosts:']
    lines += [f'        {host}:' for host in hosts]
    lines += ['      vars:', '        ansible_connection: local']
    return '\n'.join(lines) + '\n'


def run_cli(*args, timeout=120, env=None, cwd=None):
    """The installed command in a subprocess: what an operator sees on stdout and stderr."""
    base = {k: v for k, v in os.environ.items()
            if k not in ('ANT_MIGRATION_LEDGER', 'MIGRATION_PROMETHEUS_URL', 'ANT_MIGRATION_INVENTORY')}
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=dict(base, COLUMNS='200', **(env or {})), cwd=cwd, check=False)
