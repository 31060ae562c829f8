# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one antctl client of the collection (see docs/node-interface.md).

Runs on fleet hosts: standard library only, Python 3.11.
"""

from __future__ import annotations

import json
import os
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
TRANSPORT_MODE_ENV = 'ANT_TRANSPORT_MODE'

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
    no list is known. ``configured_mode`` is the ANT_TRANSPORT_MODE of the service's recorded
    environment (what it will run when started), None when antctl does not record one.
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
        'configured_mode': _service_env(raw).get(TRANSPORT_MODE_ENV),
    }


def _service_env(raw):
    """The service environment antctl recorded (``environment_variables``: [[key, value], ...])."""
    env = {}
    for pair in raw.get('environment_variables') or []:
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            env[str(pair[0])] = str(pair[1])
    return env


def parse_status(text):
    """Parse the output of ``antctl status --json`` into a list of normalized nodes."""
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
            last = (stderr or stdout or '').strip().splitlines()
            raise AntctlError(f"{' '.join(cmd)} failed with exit code {proc.returncode}: "
                              f"{last[-1].strip() if last else 'no output'}",
                              cmd=cmd, rc=proc.returncode, stdout=stdout, stderr=stderr)
        return stdout

    def status(self):
        """Every node of the host's registry, normalized (see normalize_node)."""
        return parse_status(self.run('status', '--json'))

    @staticmethod
    def _service_args(services):
        args = []
        for service in services:
            args += ['--service-name', service]
        return args

    def upgrade_env(self, services, version, env, interval_ms, timeout=None, start=True):
        """Rewrite the services' environment and restart them without changing the binary.

        ``--force --version <running version>`` makes antctl restart the node with the
        version it already runs; antctl waits ``interval_ms`` between two restarts.
        ``start=False`` adds ``--do-not-start``: the environment changes, the service stays stopped.
        """
        if not services:
            return ''
        env_arg = ','.join(f'{k}={v}' for k, v in sorted(env.items()))
        args = ['upgrade', '--force']
        if version:
            args += ['--version', version]
        args += ['--env', env_arg]
        if not start:
            args.append('--do-not-start')
        args += self._service_args(services) + ['--interval', int(interval_ms)]
        return self.run(*args, timeout=timeout)

    def set_transport_mode(self, services, version, mode, interval_ms, timeout=None, start=True):
        """Restart ``services`` (all running ``version``) in transport ``mode``; the binary stays.

        ``start=False`` only rewrites the mode of stopped services, for when they start again.
        """
        if services and not version:
            raise AntctlError('refusing to change the transport mode without the running version: '
                              'antctl upgrade without --version would install a new binary')
        return self.upgrade_env(services, version, {TRANSPORT_MODE_ENV: mode}, interval_ms, timeout=timeout,
                                start=start)

    def start(self, services=None, interval_ms=None, timeout=None):
        args = ['start'] + self._service_args(services or [])
        if interval_ms is not None:
            args += ['--interval', int(interval_ms)]
        return self.run(*args, timeout=timeout)

    def stop(self, services=None, interval_ms=None, timeout=None):
        args = ['stop'] + self._service_args(services or [])
        if interval_ms is not None:
            args += ['--interval', int(interval_ms)]
        return self.run(*args, timeout=timeout)
