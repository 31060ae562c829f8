"""antctl add, remove and reset on a simulated host: the registry's life cycle, as ant-node-manager has it.

The daemon routes ``POST /api/hosts/<host>/{add,remove,reset}`` here; the host's ``antctl`` sends them.
Followed (maidsafe/autonomi at ant-node-manager 0.14.2, service-manager 0.11.0):

- ``add`` (``ant-node-manager/src/cmd/node.rs`` ``add``, ``src/add_services/mod.rs`` ``add_node``): the binary
  comes from ``--path`` or is downloaded (offline: fails); ``--env`` becomes the registry-wide environment
  (set only here, never by ``upgrade``); nodes are numbered ``registry length + 1`` (Removed entries
  count); ``metrics_port`` is null unless ``--enable-metrics-server`` / ``--metrics-port``; each service is
  installed (``<service>.service`` written; a drop-in already in ``<service>.service.d/`` applies to it) and
  left ``Added``, not started; the peer id is known after the first start.
- ``remove`` (``cmd/node.rs`` ``remove``, ``src/lib.rs`` ``ServiceManager::remove``): a refresh first; a running
  service is refused ("Unable to remove a running service [...], stop this service first before
  removing"); the unit file is uninstalled (its drop-in directory is not: service-manager deletes only the
  file it wrote), the data and log directories removed unless ``--keep-directories``, and the node stays in
  the registry as ``Removed``.
- ``reset`` (``cmd/node.rs`` ``reset``): without ``--force`` a y/n prompt; then ``stop`` and ``remove`` of every
  service and the registry file deleted; the next ``add`` starts at ``antnode1`` again.

The simulator keeps a fixed number of node slots per host (``--nodes-per-host``, each with its metrics
port): ``add`` fills a slot that ``reset`` freed, and fails when every slot is in the registry. A node added
without a metrics server is not in the registry with a port, so nothing can read it, as on a real host.
"""

from __future__ import annotations

import shutil

from . import systemd as sd
from .httpserve import Response
from .model import STATUS_RUNNING, AntctlError


def _records(daemon, host):
    root = str(daemon.state.root)
    return {n.index: daemon.fleet.registry_record(n, root) for n in daemon.fleet.by_host[host]}


def _remove_dirs(record):
    for key in ('data_dir_path', 'log_dir_path'):
        shutil.rmtree(record[key], ignore_errors=True)


async def add(daemon, host, body):
    fleet = daemon.fleet
    count = int(body.get('count') or 1)
    if count < 1:
        raise AntctlError('--count must be at least 1')
    if body.get('metrics_port'):
        raise AntctlError('the simulator serves a node\'s metrics on its slot\'s port: use --enable-metrics-server '
                          'instead of --metrics-port')
    free = sum(1 for n in fleet.by_host[host] if not fleet.in_registry(n))
    if count > free:
        raise AntctlError('cannot add %d service(s): the simulated host %s has %d free node slot(s) (antctl add '
                          'numbers a node after every registry entry, Removed ones included)' % (count, host, free))
    env = body.get('env') or []
    if env:
        fleet.parse_env(env)
        daemon.host_env[host] = [[str(k), str(v)] for k, v in env]   # the registry-wide environment: add only
    host_dir = daemon.state.host_dir(host)
    added = []
    for _ in range(count):
        node = fleet.add_node(host, metrics=bool(body.get('enable_metrics_server')))
        record = fleet.registry_record(node, str(daemon.state.root))
        sd.write_unit(host_dir, record, daemon.host_env[host])
        added.append({'service_name': node.service_name, 'antnode_path': record['antnode_path'],
                      'data_dir_path': record['data_dir_path'], 'log_dir_path': record['log_dir_path'],
                      'rpc_socket_addr': record['rpc_socket_addr'], 'metrics_port': record['metrics_port']})
    # systemd loads a unit it has not seen when it is first used; the simulator loads it now.
    daemon.daemon_reload(host)
    daemon._after_change(nodes=[fleet.by_ref['%s/%s' % (host, a['service_name'])] for a in added])
    await daemon.replicate()
    daemon.write_registries(force=True, hosts=[host])
    return Response.json(200, {'host': host, 'operation': 'add', 'added': added, **daemon.status_doc(host)})


async def remove(daemon, host, body):
    fleet = daemon.fleet
    nodes = fleet.select(host, body.get('service_names') or [], body.get('peer_ids') or [])
    records = _records(daemon, host)
    results = []
    for node in nodes:
        if node.status == STATUS_RUNNING:
            results.append({'service_name': node.service_name, 'result': 'not removed',
                            'error': 'Unable to remove a running service ["%s"], stop this service first before '
                                     'removing' % node.service_name})
            continue
        sd.remove_unit(daemon.state.host_dir(host), node.service_name)
        if not body.get('keep_directories'):
            _remove_dirs(records[node.index])
        fleet.remove_node(node)
        results.append({'service_name': node.service_name, 'result': 'removed'})
    daemon.daemon_reload(host)
    daemon._after_change(nodes=nodes)
    await daemon.replicate()
    daemon.write_registries(force=True, hosts=[host])
    return Response.json(200, {'host': host, 'operation': 'remove', 'results': results, **daemon.status_doc(host)})


async def reset(daemon, host, body):
    fleet = daemon.fleet
    records = _records(daemon, host)
    nodes = [n for n in fleet.by_host[host] if fleet.in_registry(n)]
    for node in nodes:
        if fleet.has_unit(node):
            sd.remove_unit(daemon.state.host_dir(host), node.service_name)
            _remove_dirs(records[node.index])
    fleet.reset_host(host)
    daemon.daemon_reload(host)
    daemon._after_change(nodes=nodes)
    await daemon.replicate()
    daemon.write_registries(force=True, hosts=[host])
    return Response.json(200, {'host': host, 'operation': 'reset', 'removed': [n.service_name for n in nodes],
                               **daemon.status_doc(host)})


OPERATIONS = {'add': add, 'remove': remove, 'reset': reset}


def operate(daemon, host, op, body):
    """The coroutine that answers one add / remove / reset; an AntctlError (refused before anything changed:
    an unknown service, no free slot, a bad --env) becomes antctl's error report (HTTP 400)."""
    async def run():
        try:
            return await OPERATIONS[op](daemon, host, body)
        except AntctlError as exc:
            return Response.json(400, {'error': str(exc)})
    return run()
