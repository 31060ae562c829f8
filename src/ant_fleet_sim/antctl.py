"""antctl-compatible command of one simulated host (the subset the collection uses).

Invoked by ``DIR/hosts/<host>/bin/antctl``. Flags, JSON and exit codes follow the real
antctl (maidsafe/autonomi, ant-node-manager): ``status [--json] [--details] [--fail]``,
``start|stop [--service-name S]... [--peer-id P]... [--interval MS]``,
``upgrade [--force] [--version V] [--env K=V[,K=V]] [--service-name S]... [--interval MS]
[--connection-timeout S] [--do-not-start] [--path P]``, ``add --rewards-address A [--count N]
[--enable-metrics-server] [--env K=V[,K=V]] [--path P] [--version V]``, ``remove [--service-name S]...
[--peer-id P]... [--keep-directories]``, ``reset [--force]`` (node_manager.py: what each follows).
Errors are color-eyre reports on stderr (``Error:``, `` 0: <reason>``, ``Location:``, the backtrace
hint) with exit 1 (exit 2 for command-line usage errors, as clap does).
``status`` with an empty registry prints nothing. ``upgrade`` and ``add`` download the release unless
``--path`` is given, and the simulated hosts are offline (``release_repo_online``): they fail as the
real ones do without a network. Keep imports light: this runs once per module call on every host.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from . import wire

DEFAULT_CONNECTION_TIMEOUT_S = 300
RPC_TIMEOUT_S = 3.0
ENV_FORMAT_ERROR = ('Environment variable must be in the format KEY=VALUE or KEY=INNER_KEY=VALUE.\n'
                    'Multiple key-value pairs can be given with a comma between them.')


class UsageError(Exception):
    pass


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parse_env(value):
    pairs = []
    for item in value.split(','):
        if not item:
            continue
        key, sep, val = item.partition('=')
        if not sep or not key:
            raise argparse.ArgumentTypeError(ENV_FORMAT_ERROR)
        pairs.append([key, val])
    return pairs


def build_parser():
    parser = ArgumentParser(prog='antctl', description='antctl of a simulated host (ant-fleet-sim)')
    parser.add_argument('--host-dir', required=True, help=argparse.SUPPRESS)
    parser.add_argument('-v', '--verbose', action='count', default=0)
    parser.add_argument('--version', dest='show_version', action='store_true')
    sub = parser.add_subparsers(dest='command')

    status = sub.add_parser('status', help='Get the status of services.')
    status.add_argument('--details', action='store_true')
    status.add_argument('--fail', action='store_true')
    status.add_argument('--json', action='store_true')

    def targets(p):
        p.add_argument('--peer-id', action='append', default=[])
        p.add_argument('--service-name', action='append', default=[])

    for name in ('start', 'stop'):
        p = sub.add_parser(name, help='%s antnode service(s).' % name.capitalize())
        targets(p)
        p.add_argument('--interval', type=int)
        if name == 'start':
            p.add_argument('--connection-timeout', type=int)

    up = sub.add_parser('upgrade', help='Upgrade antnode services.')
    targets(up)
    up.add_argument('--connection-timeout', type=int)
    up.add_argument('--do-not-start', action='store_true')
    up.add_argument('--env', type=parse_env, action='append', default=[])
    up.add_argument('--force', action='store_true')
    up.add_argument('--interval', type=int)
    up.add_argument('--path')
    up.add_argument('--url')
    up.add_argument('--version')

    add = sub.add_parser('add', help='Add one or more antnode services.')
    add.add_argument('--count', type=int)
    add.add_argument('--enable-metrics-server', action='store_true')
    add.add_argument('--env', type=parse_env, action='append', default=[])
    add.add_argument('--metrics-port')
    add.add_argument('--path')
    add.add_argument('--rewards-address', required=True)
    add.add_argument('--url')
    add.add_argument('--version')
    for flag in ('--auto-restart', '--no-upnp', '--relay', '--first', '--local', '--alpha'):
        add.add_argument(flag, action='store_true')
    for option in ('--data-dir-path', '--log-dir-path', '--log-format', '--network-id', '--node-ip', '--node-port',
                   '--rpc-address', '--rpc-port', '--user', '--max-log-files', '--max-archived-log-files', '--peer'):
        add.add_argument(option)

    rm = sub.add_parser('remove', help='Remove antnode service(s).')
    targets(rm)
    rm.add_argument('--keep-directories', action='store_true')

    reset = sub.add_parser('reset', help='Remove all antnode services, data and logs.')
    reset.add_argument('-f', '--force', action='store_true')
    return parser


class Sim:
    def __init__(self, host_dir):
        self.host_dir = os.path.abspath(host_dir)
        self.host = os.path.basename(self.host_dir.rstrip('/'))
        self.state_dir = os.path.dirname(os.path.dirname(self.host_dir))
        self.api_url = None
        try:
            with open(os.path.join(self.state_dir, 'sim.json')) as fh:
                info = json.load(fh)
            if info.get('pid'):
                self.api_url = info.get('api_url')
        except (OSError, ValueError):
            pass

    def call(self, method, path, body=None, timeout=30.0):
        if not self.api_url:
            raise ConnectionError('the simulated fleet is not running (no %s/sim.json with a pid)' % self.state_dir)
        data = None if body is None else json.dumps(body).encode()
        try:
            status, payload = wire.request(self.api_url + path, method=method, body=data, timeout=timeout)
        except (OSError, ValueError) as exc:
            raise ConnectionError('cannot reach the simulator at %s: %s' % (self.api_url, exc)) from None
        try:
            return status, json.loads(payload or b'{}')
        except ValueError:
            return status, {'error': 'HTTP %d: %s' % (status, payload[:200].decode('utf-8', 'replace'))}

    def offline_status(self):
        """The registry file when the simulator is down: every service is Stopped (its process is gone)."""
        with open(os.path.join(self.host_dir, 'node_registry.json')) as fh:
            registry = json.load(fh)
        for node in registry.get('nodes', []):
            if node.get('status') == 'Running':
                node['status'] = 'Stopped'
            node['pid'] = None
            node['connected_peers'] = None
            node['connected_peers_count'] = 0
        return {'nodes': registry.get('nodes', []), 'daemon': None}


def rpc_refresh(doc):
    """antctl's full refresh before start / stop / upgrade: every running node is asked over its RPC
    port (one attempt); the first that does not answer aborts the command, as in
    ant-node-manager/src/lib.rs refresh_node_registry. Returns the error message or None."""
    for node in doc.get('nodes', []):
        if node.get('status') != 'Running' or not node.get('rpc_socket_addr'):
            continue
        addr = node['rpc_socket_addr']
        try:
            status, _payload = wire.request('http://%s/network_info' % addr, timeout=RPC_TIMEOUT_S)
        except (OSError, ValueError):
            status = None
        if status != 200:
            # RpcClient::from_socket_addr builds "https://{socket}" (ant-service-management/src/rpc.rs).
            return "Could not connect to RPC endpoint 'https://%s'" % addr
    return None


def fail(message, code=1, location='ant-node-manager/src/bin/cli/main.rs'):
    """A color-eyre error report, as antctl prints it (colours off: stderr is not a terminal)."""
    sys.stderr.write('Error: \n   0: %s\n\nLocation:\n   %s\n\n'
                     'Backtrace omitted. Run with RUST_BACKTRACE=1 environment variable to display it.\n'
                     'Run with RUST_BACKTRACE=full to include source snippets.\n' % (message, location))
    return code


def print_banner(title):
    """The box antctl's add / remove / reset print first (ant-node-manager/src/lib.rs print_banner)."""
    width = len(title) + 4
    print('\u2554%s\u2557' % ('\u2550' * (width + 2)))
    print('\u2551 %s \u2551' % title.center(width))
    print('\u255a%s\u255d' % ('\u2550' * (width + 2)))


def print_table(doc, details=False):
    print('=' * 49)
    print('{:^49}'.format('Antnode Services'))
    print('=' * 49)
    print('Refreshing the node registry...')
    if details:
        for node in doc['nodes']:
            print('%s - %s' % (node['service_name'], node['status'].upper()))
            for key in ('version', 'peer_id', 'rpc_socket_addr', 'metrics_port', 'data_dir_path', 'log_dir_path'):
                print('%s: %s' % (key.replace('_', ' ').capitalize(), node.get(key)))
            print('Connected peers: %s' % peers_count(node))
            print()
        return
    print('%-18s %-53s %-8s %s' % ('Service Name', 'Peer ID', 'Status', 'Connected Peers'))
    for node in doc['nodes']:
        print('%-18s %-53s %-8s %s' % (node['service_name'], node['peer_id'], node['status'].upper(),
                                       peers_count(node)))


def peers_count(node):
    """The connected-peers figure antctl prints: the number of peers, ``-`` when unknown."""
    peers = node.get('connected_peers')
    return '-' if peers is None else len(peers)


def run(argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        sys.stderr.write('error: %s\n\nFor more information, try \'--help\'.\n' % exc)
        return 2
    if args.show_version:
        print('Autonomi Node Manager v0.13.0 (ant-fleet-sim)')
        return 0
    if not args.command:
        parser.print_help()
        return 2
    sim = Sim(args.host_dir)
    cmd = args.command
    if os.geteuid() != 0:
        # Not root: the real antctl works in user mode, on the user's own registry under
        # ~/.local/share/autonomi/node (ant-node-manager/src/config.rs get_node_manager_path,
        # get_node_registry_path; cmd/node.rs `user_mode = !is_running_as_root()`). That registry
        # does not hold the host's system-wide services, so there is nothing to show or touch.
        if cmd in ('start', 'stop', 'upgrade'):
            print('No services were eligible to be %s' % {'start': 'started', 'stop': 'stopped',
                                                          'upgrade': 'upgraded'}[cmd])
        return 0
    if cmd in LIFECYCLE:
        try:
            return LIFECYCLE[cmd](sim, args)
        except ConnectionError as exc:
            return fail(str(exc))
    if cmd != 'status':
        if args.peer_id and args.service_name:
            sys.stderr.write("error: the argument '--service-name <SERVICE_NAME>' cannot be used with "
                             "'--peer-id <PEER_ID>'\n")
            return 2
        if getattr(args, 'connection_timeout', None) is not None and args.interval is not None:
            sys.stderr.write("error: the argument '--interval <INTERVAL>' cannot be used with "
                             "'--connection-timeout <CONNECTION_TIMEOUT>'\n")
            return 2
    try:
        if cmd == 'status':
            try:
                code, doc = sim.call('GET', '/api/hosts/%s/status' % sim.host)
            except ConnectionError:
                doc, code = sim.offline_status(), 200
            if code != 200:
                return fail(doc.get('error', 'status failed'))
            if not doc['nodes']:
                return 0  # an empty registry: antctl prints nothing at all
            if args.json:
                print(json.dumps(doc, indent=2))
            else:
                # Without --json antctl does a full refresh first (ant-node-manager/src/lib.rs status_report:
                # refresh_node_registry(full_refresh = !output_json)): every running node over its RPC, so the
                # table's connected peers are current; --json shows those of the last full refresh.
                if any(n.get('status') == 'Running' for n in doc['nodes']):
                    error = rpc_refresh(doc)
                    if error:
                        return fail(error, location='ant-service-management/src/rpc.rs')
                    code, doc = sim.call('GET', '/api/hosts/%s/status' % sim.host)
                    if code != 200:
                        return fail(doc.get('error', 'status failed'))
                print_table(doc, args.details)
            if args.fail and any(n['status'] != 'Running' for n in doc['nodes']):
                return fail('One or more nodes are not in a running state')
            return 0
        if cmd == 'upgrade' and not args.path:
            # The release is fetched before anything else; the simulated hosts have no network unless the
            # simulator says so (the daemon answers for its release repository).
            code, doc = sim.call('GET', '/api/release_repo')
            if not doc.get('online'):
                return fail('Failed to download release after 3 tries.', location='ant-node-manager/src/helpers.rs')
        code, doc = sim.call('GET', '/api/hosts/%s/status' % sim.host)
        if code == 200:
            error = rpc_refresh(doc)
            if error:
                return fail(error, location='ant-service-management/src/rpc.rs')
        body = {'service_names': args.service_name, 'peer_ids': args.peer_id, 'interval_ms': args.interval or 0}
        if cmd in ('start', 'upgrade') and args.interval is None:
            body['connection_timeout'] = args.connection_timeout or DEFAULT_CONNECTION_TIMEOUT_S
        if cmd == 'upgrade':
            body.update({'path': args.path, 'url': args.url, 'force': args.force, 'version': args.version,
                         'do_not_start': args.do_not_start,
                         'env': [pair for group in args.env for pair in group]})
        code, doc = sim.call('POST', '/api/hosts/%s/%s' % (sim.host, cmd), body, timeout=None)
        if code != 200:
            return fail(doc.get('error', '%s failed (HTTP %s)' % (cmd, code)),
                        location=doc.get('location', 'ant-node-manager/src/bin/cli/main.rs'))
        failed = [r for r in doc.get('results', []) if r.get('error')]
        for result in doc.get('results', []):
            line = '%s: %s' % (result['service_name'], result['result'])
            if cmd == 'upgrade' and result.get('old_mode') != result.get('new_mode'):
                line += ' (%s -> %s)' % (result.get('old_mode'), result.get('new_mode'))
            print(line + ('; %s' % result['error'] if result.get('error') else ''))
        if failed:
            return fail('Failed to %s %d service(s)' % (cmd, len(failed)))
        return 0
    except ConnectionError as exc:
        return fail(str(exc))


REWARDS_ADDRESS = re.compile(r'^(0x)?[0-9a-fA-F]{40}$')


def _refresh_first(sim):
    """start / stop / upgrade / remove / reset refresh every running node over RPC first; None or the exit code."""
    code, doc = sim.call('GET', '/api/hosts/%s/status' % sim.host)
    if code == 200:
        error = rpc_refresh(doc)
        if error:
            return fail(error, location='ant-service-management/src/rpc.rs')
    return None


def add(sim, args):
    """ant-node-manager/src/cmd/node.rs add, src/add_services/mod.rs add_node."""
    if not REWARDS_ADDRESS.match(args.rewards_address):
        sys.stderr.write("error: invalid value '%s' for '--rewards-address <REWARDS_ADDRESS>': invalid string "
                         "length\n\nFor more information, try '--help'.\n" % args.rewards_address)
        return 2
    if not args.path:
        # The release is downloaded unless --path names a local binary (offline: fails, as upgrade does).
        _code, doc = sim.call('GET', '/api/release_repo')
        if not doc.get('online'):
            return fail('Failed to download release after 3 tries.', location='ant-node-manager/src/helpers.rs')
    body = {'count': args.count, 'enable_metrics_server': args.enable_metrics_server,
            'metrics_port': args.metrics_port, 'env': [pair for group in args.env for pair in group],
            'path': args.path, 'version': args.version}
    code, doc = sim.call('POST', '/api/hosts/%s/add' % sim.host, body)
    if code != 200:
        return fail(doc.get('error', 'add failed (HTTP %s)' % code),
                    location='ant-node-manager/src/add_services/mod.rs')
    print_banner('Add Antnode Services')
    print('%d service(s) to be added' % len(doc['added']))
    print('Services Added:')
    for added in doc['added']:
        print(' \u2713 %s' % added['service_name'])
        print('    - Antnode path: %s' % added['antnode_path'])
        print('    - Data path: %s' % added['data_dir_path'])
        print('    - Log path: %s' % added['log_dir_path'])
        print('    - RPC port: %s' % added['rpc_socket_addr'].rsplit(':', 1)[-1])
    print('[!] Note: newly added services have not been started')
    return 0


def remove(sim, args):
    """ant-node-manager/src/cmd/node.rs remove; ServiceManager::remove in src/lib.rs."""
    if args.peer_id and args.service_name:
        sys.stderr.write("error: the argument '--service-name <SERVICE_NAME>' cannot be used with "
                         "'--peer-id <PEER_ID>'\n")
        return 2
    print_banner('Remove Antnode Services')
    sys.stdout.flush()
    refused = _refresh_first(sim)
    if refused is not None:
        return refused
    body = {'service_names': args.service_name, 'peer_ids': args.peer_id,
            'keep_directories': args.keep_directories}
    code, doc = sim.call('POST', '/api/hosts/%s/remove' % sim.host, body)
    if code != 200:
        return fail(doc.get('error', 'remove failed (HTTP %s)' % code))
    failed = [r for r in doc['results'] if r.get('error')]
    for result in doc['results']:
        if not result.get('error'):
            print('\u2713 Service %s was removed' % result['service_name'])
    if failed:
        print('Failed to remove %d service(s):' % len(failed))
        for result in failed:
            print('\u2715 %s: %s' % (result['service_name'], result['error']))
        return fail('Failed to remove one or more services')
    if not doc['results']:
        print('No services were eligible for removal')
    return 0


def reset(sim, args):
    """ant-node-manager/src/cmd/node.rs reset: a y/n prompt without --force, then stop and remove every
    service and delete the registry."""
    print_banner('Reset Antnode Services')
    if not args.force:
        print('WARNING: all antnode services, data, and logs will be removed.')
        print('Do you wish to proceed? [y/n]')
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() != 'y':
            print('Reset aborted')
            return 0
    refused = _refresh_first(sim)
    if refused is not None:
        return refused
    code, doc = sim.call('POST', '/api/hosts/%s/reset' % sim.host, {})
    if code != 200:
        return fail(doc.get('error', 'reset failed (HTTP %s)' % code))
    for name in doc['removed']:
        print('\u2713 Service %s was removed' % name)
    return 0


LIFECYCLE = {'add': add, 'remove': remove, 'reset': reset}


def main():
    sys.exit(run(sys.argv[1:]))


if __name__ == '__main__':
    main()
