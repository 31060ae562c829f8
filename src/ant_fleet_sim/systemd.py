"""The systemd of a simulated host: unit files, drop-ins, and the systemctl verbs the collection uses.

Per host, ``DIR/hosts/<host>/systemd/system`` holds ``antnodeN.service`` (written as antctl's
service-manager writes it: the registry-wide environment as ``Environment=`` lines) and the
drop-in directories ``antnodeN.service.d/*.conf``. As in systemd, a node's process environment
is what the manager *loaded* at the last ``daemon-reload`` (unit, then drop-ins in name order,
later assignments win), and it reaches the node only when the service (re)starts.

Sources followed: systemd.unit(5) (drop-ins), systemd.exec(5) (``Environment=``),
maidsafe/autonomi ``ant-service-management/src/control.rs`` and the service-manager crate
(unit written on install; ``antctl upgrade`` uninstalls and installs the service again).
"""

from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import parse_environment

UNIT_SUBDIR = ('systemd', 'system')


def unit_dir(host_dir):
    return Path(host_dir).joinpath(*UNIT_SUBDIR)


def unit_path(host_dir, service):
    return unit_dir(host_dir) / ('%s.service' % service)


def dropin_paths(host_dir, service):
    directory = unit_dir(host_dir) / ('%s.service.d' % service)
    try:
        return sorted(p for p in directory.iterdir() if p.suffix == '.conf' and p.is_file())
    except OSError:
        return []


def render_unit(record, env_pairs):
    """The unit antctl installs for a node (service-manager's systemd template, shortened)."""
    lines = [
        '[Unit]',
        'Description=%s' % record['service_name'],
        '',
        '[Service]',
        'ExecStart=%s --rpc %s --root-dir %s --log-output-dest %s --metrics-server-port %s' % (
            record['antnode_path'], record['rpc_socket_addr'], record['data_dir_path'], record['log_dir_path'],
            record['metrics_port']),
        'Restart=on-failure',
        'User=%s' % (record.get('user') or 'ant'),
    ]
    lines += ['Environment="%s=%s"' % (key, value) for key, value in env_pairs]
    lines += ['', '[Install]', 'WantedBy=multi-user.target', '']
    return '\n'.join(lines)


def write_unit(host_dir, record, env_pairs):
    path = unit_path(host_dir, record['service_name'])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name('.%s.%d.tmp' % (path.name, os.getpid()))
    tmp.write_text(render_unit(record, env_pairs))
    os.replace(tmp, path)


def remove_unit(host_dir, service):
    """Uninstall a service as service-manager does: its unit file only; ``<service>.service.d/`` stays."""
    try:
        unit_path(host_dir, service).unlink()
    except FileNotFoundError:
        pass


def effective_env(host_dir, service):
    """The environment systemd loads for ``service``: the unit's, then each drop-in's (later wins).

    None when the unit does not exist.
    """
    try:
        text = unit_path(host_dir, service).read_text()
    except OSError:
        return None
    env = parse_environment(text)
    for path in dropin_paths(host_dir, service):
        try:
            extra = path.read_text()
        except OSError:
            continue
        if any(line.strip() == 'Environment=' for line in extra.splitlines()):
            env = {}
        env.update(parse_environment(extra))
    return env


def switch_mode(state, host, services, mode, interval_ms=0):
    """Switch services of a simulated host as the collection does on a real one (tests use it):
    the transport-mode drop-in, ``systemctl daemon-reload``, then ``systemctl restart`` each."""
    import subprocess
    import time

    from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import DROPIN_NAME
    from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import dropin_text

    services = [services] if isinstance(services, str) else list(services)
    for service in services:
        path = unit_dir(state.host_dir(host)) / ('%s.service.d' % service) / DROPIN_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dropin_text(mode))
    systemctl = str(state.systemctl(host))
    subprocess.run([systemctl, 'daemon-reload'], check=True, capture_output=True, text=True, timeout=60)
    results = []
    for index, service in enumerate(services):
        results.append(subprocess.run([systemctl, 'restart', '%s.service' % service], check=True,
                                      capture_output=True, text=True, timeout=60))
        if interval_ms and index < len(services) - 1:
            time.sleep(interval_ms / 1000.0)
    return results


def configured_modes(state, host):
    """{service: the transport mode its unit and drop-ins configure} of a simulated host, read from
    the files as an operator would (libp2p_only when nothing sets ANT_TRANSPORT_MODE)."""
    host_dir = state.host_dir(host)
    modes = {}
    for path in sorted(unit_dir(host_dir).glob('*.service')):
        service = path.name[:-len('.service')]
        modes[service] = (effective_env(host_dir, service) or {}).get('ANT_TRANSPORT_MODE') or 'libp2p_only'
    return modes
