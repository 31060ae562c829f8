# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one antctl client of the collection (see docs/node-interface.md).

Runs on fleet hosts: standard library only, Python 3.11.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import (
    AntctlError,
    AntctlNotFound,
    AntctlOutputError,
    AntctlTimeout,
    NodeSelectionError,
)

DEFAULT_ANTCTL_PATH = '/usr/local/bin/antctl'
DEFAULT_COMMAND_TIMEOUT = 600
_ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')
_CAUSE = re.compile(r'^\d+:\s*(.*)$')

STATUS_RUNNING = 'Running'
STATUS_STOPPED = 'Stopped'
STATUS_ADDED = 'Added'
STATUS_REMOVED = 'Removed'

# Fields every node of `antctl status --json` has (docs/node-interface.md).
REQUIRED_NODE_FIELDS = ('service_name', 'status')


def normalize_node(raw):
    """One node of ``antctl status --json`` as a flat dict with predictable keys.

    antctl reports ``connected_peers`` as a list of peer ids (the registry's form; null when the
    node is not connected) or, in some versions, as a count; both are accepted, and
    ``connected_peers_count`` fills in when the list is null. ``connected_peer_ids`` is None when
    no list is known. The list is what antctl saw at its last full refresh (``status --json`` only
    checks the process, not the node's RPC): stale, never a readiness figure.

    antctl keeps no per-node environment, so ``configured_mode`` is not antctl's: the node reader
    fills it from the service's systemd drop-in (module_utils._systemd).
    """
    missing = [f for f in REQUIRED_NODE_FIELDS if f not in raw]
    if missing:
        raise AntctlOutputError(f"antctl status: node entry lacks {', '.join(missing)}: {raw!r}")
    peers = raw.get('connected_peers')
    if isinstance(peers, list):
        peer_ids, peer_count = [str(p) for p in peers], len(peers)
    elif isinstance(peers, int) and not isinstance(peers, bool):
        peer_ids, peer_count = None, peers
    else:
        count = raw.get('connected_peers_count')
        peer_ids, peer_count = None, count if isinstance(count, int) and not isinstance(count, bool) else None
    metrics_port = raw.get('metrics_port')
    return {
        'service_name': str(raw['service_name']),
        'peer_id': raw.get('peer_id'),
        'status': str(raw['status']),
        'version': raw.get('version'),
        'number': raw.get('number'),
        'metrics_port': int(metrics_port) if metrics_port not in (None, '') else None,
        'rpc_socket_addr': raw.get('rpc_socket_addr'),
        'node_port': raw.get('node_port'),
        'data_dir_path': raw.get('data_dir_path'),
        'log_dir_path': raw.get('log_dir_path'),
        'connected_peers': peer_count,
        'connected_peer_ids': peer_ids,
        'configured_mode': None,
    }


def eyre_reason(text):
    """The reason of a color-eyre / anyhow error report, as one line; None when ``text`` holds none.

    antctl fails with::

        Error:
           0: Could not connect to RPC endpoint 'https://127.0.0.1:13002'
           1: transport error

        Location:
           ant-node-manager/src/cmd/node.rs:320

        Backtrace omitted. Run with RUST_BACKTRACE=1 environment variable to display it.

    The numbered causes (joined with ': ') are the reason; ``Location:``, the backtrace hint and
    ANSI colours are not. ``Error: message`` on one line (anyhow) is read too.
    """
    text = _ANSI.sub('', text or '')
    lines = text.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith('Error:'):
            continue
        inline = stripped[len('Error:'):].strip()
        causes = []
        for follow in lines[index + 1:]:
            item = follow.strip()
            if not item:
                if causes:
                    break
                continue
            if item.startswith(('Location:', 'Backtrace', 'Run with RUST_BACKTRACE', 'Suggestion:', 'Note:',
                                'Warning:', 'Caused by:')):
                break
            match = _CAUSE.match(item)
            if match:
                causes.append(match.group(1).strip())
            elif causes:
                causes[-1] += ' ' + item  # a cause that spans lines
            elif not inline:
                inline = item
        reason = ': '.join(c for c in ([inline] if inline else []) + causes if c)
        if reason:
            return reason
    return None


def parse_status(text):
    """Parse the output of ``antctl status --json`` into a list of normalized nodes."""
    if not (text or '').strip():
        return []  # antctl prints nothing at all for an empty registry (exit 0)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AntctlOutputError(f'antctl status --json did not print JSON: {exc}', stdout=text) from None
    if not isinstance(data, dict) or not isinstance(data.get('nodes'), list):
        raise AntctlOutputError('antctl status --json: expected an object with a "nodes" list', stdout=text)
    return [normalize_node(node) for node in data['nodes'] if isinstance(node, dict)]


def select_nodes(nodes, selectors=None, include_removed=False):
    """The nodes named by ``selectors`` (service names or peer ids), in registry order.

    No selectors means every node of the host that is not Removed. A selector that matches
    no node raises NodeSelectionError naming it, so a typo never silently selects nothing.
    """
    candidates = [n for n in nodes if include_removed or n['status'] != STATUS_REMOVED]
    if not selectors:
        return candidates
    wanted = [str(s) for s in selectors]
    unknown = [s for s in wanted
               if not any(s in (n['service_name'], n['peer_id']) for n in candidates)]
    if unknown:
        known = ', '.join(n['service_name'] for n in candidates) or 'none'
        raise NodeSelectionError(
            f"no node of this host has the service name or peer id {', '.join(unknown)} (nodes: {known})")
    return [n for n in candidates if n['service_name'] in wanted or n['peer_id'] in wanted]


class Antctl:
    """Runs one host's antctl.

    ``env`` is added to the process environment of every antctl call (for example a
    registry path for a non-standard installation). ``timeout`` bounds each call.
    """

    def __init__(self, path=DEFAULT_ANTCTL_PATH, env=None, timeout=DEFAULT_COMMAND_TIMEOUT):
        self.path = path
        self.env = dict(env or {})
        self.timeout = timeout

    def run(self, *args, timeout=None):
        """Run antctl with ``args``; return its stdout. Raise AntctlError on any failure."""
        cmd = [self.path] + [str(a) for a in args]
        if not os.path.isfile(self.path) or not os.access(self.path, os.X_OK):
            raise AntctlNotFound(
                f'antctl not found or not executable at {self.path}; set antctl_path to the antctl of this host',
                cmd=cmd)
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in self.env.items()})
        limit = timeout or self.timeout
        try:
            # A session of its own so that a timeout kills antctl and everything it started.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, text=True, start_new_session=True)
        except OSError as exc:
            raise AntctlNotFound(f'cannot run {self.path}: {exc}', cmd=cmd) from None
        try:
            stdout, stderr = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            stdout, stderr = proc.communicate()
            raise AntctlTimeout(f"{' '.join(cmd)} did not finish within {limit} s",
                                cmd=cmd, stdout=stdout, stderr=stderr) from None
        if proc.returncode != 0:
            reason = eyre_reason(stderr) or eyre_reason(stdout)
            if reason is None:
                last = _ANSI.sub('', stderr or stdout or '').strip().splitlines()
                reason = last[-1].strip() if last else 'no output'
            raise AntctlError(f"{' '.join(cmd)} failed with exit code {proc.returncode}: {reason}",
                              cmd=cmd, rc=proc.returncode, stdout=stdout, stderr=stderr)
        return stdout

    def status(self):
        """Every node of the host's registry, normalized (see normalize_node).

        Not as root, antctl works in user mode on the user's own registry (ant-node-manager
        config.rs), which does not hold the host's services: an empty answer then is not "this
        host has no nodes" but "not allowed to see them", and is raised as such.
        """
        nodes = parse_status(self.run('status', '--json'))
        if not nodes and hasattr(os, 'geteuid') and os.geteuid() != 0:
            raise AntctlError('antctl status --json shows no services when not run as root (antctl then reads '
                              'the user\'s own registry, not /var/antctl/node_registry.json): run the task with '
                              'become (root)', cmd=[self.path, 'status', '--json'], rc=0)
        return nodes

    def version(self):
        """antctl's own ``--version`` line (the fallback for a node version when /metadata is absent)."""
        return self.run('--version').strip()
