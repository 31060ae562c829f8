"""The antctl of a host whose node services are units of a real systemd (tests/realsystemd).

The subset the collection and that test use: ``add`` installs node services as antctl's service
manager does (``<unit_dir>/antnodeN.service`` only, numbered ``registry length + 1``, metrics port only
with ``--enable-metrics-server``; maidsafe/autonomi ant-node-manager/src/add_services/mod.rs), and
``status --json`` prints the registry with each node's status from systemd (a partial refresh: no RPC,
ant-node-manager/src/lib.rs ``status_report``) and its peer id once the node has started. The node
process is ``ant_fleet_sim.unitnode``. Errors are color-eyre reports, as antctl's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from .antctl import ArgumentParser, UsageError, fail, parse_env

REGISTRY = Path(os.environ.get('ANT_UNITCTL_REGISTRY', '/var/antctl/node_registry.json'))
UNIT_DIR = Path(os.environ.get('ANT_UNITCTL_UNIT_DIR', '/etc/systemd/system'))
DATA_DIR = Path('/var/antctl/services')
LOG_DIR = Path('/var/log/antnode')
PYTHON = os.environ.get('ANT_UNITCTL_PYTHON', '/usr/bin/python3')


def load():
    try:
        return json.loads(REGISTRY.read_text())
    except FileNotFoundError:
        return {'nodes': [], 'environment_variables': None, 'daemon': None}


def save(registry):
    REGISTRY.parent.mkdir(parents=True, exist_ok=True)
    tmp = REGISTRY.with_name('.%s.tmp' % REGISTRY.name)
    tmp.write_text(json.dumps(registry, indent=2) + '\n')
    os.replace(tmp, REGISTRY)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def unit_text(node, env_pairs, node_args):
    exec_start = ('%s -m ant_fleet_sim.unitnode --name %s --metrics-port %s --data-dir %s %s'
                  % (PYTHON, node['service_name'], node['metrics_port'], node['data_dir_path'], node_args)).strip()
    lines = ['[Unit]', 'Description=%s' % node['service_name'], '', '[Service]', 'ExecStart=%s' % exec_start,
             'Restart=on-failure', 'Environment="PYTHONPATH=%s"' % os.environ.get('PYTHONPATH', '')]
    lines += ['Environment="%s=%s"' % (key, value) for key, value in env_pairs or []]
    return '\n'.join(lines + ['', '[Install]', 'WantedBy=multi-user.target', ''])


def add(args):
    registry = load()
    if args.env:
        registry['environment_variables'] = [pair for group in args.env for pair in group]
    added = []
    for _ in range(args.count or 1):
        number = len(registry['nodes']) + 1
        name = 'antnode%d' % number
        node = {
            'schema_version': 2, 'service_name': name, 'number': number, 'peer_id': None, 'status': 'Added',
            'version': '0.4.6', 'pid': None,
            'metrics_port': free_port() if args.enable_metrics_server else None,
            'rpc_socket_addr': '127.0.0.1:%d' % free_port(), 'node_port': free_port(), 'node_ip': '127.0.0.1',
            'data_dir_path': str(DATA_DIR / name), 'log_dir_path': str(LOG_DIR / name),
            'antnode_path': args.path or '/usr/local/bin/antnode', 'connected_peers': None,
            'rewards_address': args.rewards_address, 'user': 'root', 'user_mode': False,
        }
        UNIT_DIR.mkdir(parents=True, exist_ok=True)
        (UNIT_DIR / ('%s.service' % name)).write_text(
            unit_text(node, registry['environment_variables'], args.node_args or ''))
        registry['nodes'].append(node)
        added.append(name)
    save(registry)
    print('Services Added:')
    for name in added:
        print(' \u2713 %s' % name)
    print('[!] Note: newly added services have not been started')
    return 0


def _show(service):
    proc = subprocess.run(['systemctl', 'show', '%s.service' % service, '-p', 'ActiveState', '-p', 'MainPID'],
                          capture_output=True, text=True)
    return dict(line.split('=', 1) for line in proc.stdout.splitlines() if '=' in line)


def status(args):
    registry = load()
    for node in registry['nodes']:
        if node['status'] == 'Removed':
            continue
        shown = _show(node['service_name'])
        active = shown.get('ActiveState') in ('active', 'activating', 'reloading')
        if active:
            node['status'], node['pid'] = 'Running', int(shown.get('MainPID') or 0) or None
        elif node['status'] != 'Added':
            node['status'], node['pid'] = 'Stopped', None
        peer_file = Path(node['data_dir_path']) / 'peer-id'
        if node['status'] != 'Added' and peer_file.exists():
            node['peer_id'] = peer_file.read_text().strip()
    save(registry)
    if not registry['nodes']:
        return 0
    if args.json:
        print(json.dumps({'nodes': registry['nodes'], 'daemon': None}, indent=2))
    else:
        for node in registry['nodes']:
            print('%-12s %-53s %s' % (node['service_name'], node['peer_id'], node['status'].upper()))
    return 0


def build_parser():
    parser = ArgumentParser(prog='antctl', description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command')
    st = sub.add_parser('status')
    st.add_argument('--json', action='store_true')
    st.add_argument('--details', action='store_true')
    ad = sub.add_parser('add')
    ad.add_argument('--count', type=int)
    ad.add_argument('--enable-metrics-server', action='store_true')
    ad.add_argument('--env', type=parse_env, action='append', default=[])
    ad.add_argument('--path')
    ad.add_argument('--rewards-address', required=True)
    ad.add_argument('--node-args', help=argparse.SUPPRESS)   # the stand-in node's own options (tests)
    return parser


def run(argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        sys.stderr.write('error: %s\n' % exc)
        return 2
    try:
        if args.command == 'add':
            return add(args)
        if args.command == 'status':
            return status(args)
    except OSError as exc:
        return fail(str(exc))
    parser.print_help()
    return 2


if __name__ == '__main__':
    sys.exit(run(sys.argv[1:]))
