"""Fault specifications: validation and matching.

A fault is a plain dict (what the HTTP API and the CLI exchange). ``validate_fault`` turns a
request into a normalised fault or raises :class:`FaultError` with a message that names the
bad value; nothing in the running fleet changes on error.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODES, TRANSPORTS

FAULT_KINDS = ('transport', 'crash_on_switch', 'unresponsive', 'rpc_unresponsive', 'partition')
CRASH_BEHAVIOURS = ('crash', 'never_ready')


class FaultError(ValueError):
    """A fault request is invalid (unknown host, bad rate, unknown mode, ...)."""


def _host_list(value, known_hosts, what='hosts'):
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.split(',') if v]
    if not isinstance(value, (list, tuple)):
        raise FaultError('%s must be a list of host names, got %r' % (what, value))
    unknown = [h for h in value if h not in known_hosts]
    if unknown:
        raise FaultError('unknown host(s) in %s: %s; known hosts: %s … %s'
                         % (what, ', '.join(map(str, unknown)), known_hosts[0], known_hosts[-1]))
    return list(dict.fromkeys(value))


def _node_list(value, known_nodes):
    """Node references are 'host/service_name' strings."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.split(',') if v]
    if not isinstance(value, (list, tuple)):
        raise FaultError('nodes must be a list of "host/service_name" strings, got %r' % (value,))
    unknown = [n for n in value if n not in known_nodes]
    if unknown:
        raise FaultError('unknown node(s): %s; write them as host/service_name, e.g. sim-host-01/antnode1'
                         % ', '.join(map(str, unknown)))
    return list(dict.fromkeys(value))


def _mode(value, what='mode'):
    if value is None:
        return None
    if value not in MODES:
        raise FaultError('unknown %s %r; expected one of %s' % (what, value, ', '.join(MODES)))
    return value


def _rate(value, what):
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise FaultError('%s must be a number between 0 and 1, got %r' % (what, value)) from None
    if not 0.0 <= rate <= 1.0:
        raise FaultError('%s must be between 0 and 1, got %s' % (what, value))
    return rate


def _non_negative(value, what):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FaultError('%s must be a non-negative number, got %r' % (what, value)) from None
    if number < 0 or number != number:
        raise FaultError('%s must be a non-negative number, got %s' % (what, value))
    return number


def validate_fault(request, known_hosts, known_nodes):
    """Validate a fault request dict; return the normalised fault (without id)."""
    if not isinstance(request, dict):
        raise FaultError('a fault must be a JSON object, got %r' % (request,))
    kind = request.get('kind')
    if kind not in FAULT_KINDS:
        raise FaultError('unknown fault kind %r; expected one of %s' % (kind, ', '.join(FAULT_KINDS)))
    allowed = {
        'transport': {'transport', 'error_rate', 'latency_ms', 'hosts', 'nodes', 'mode'},
        'crash_on_switch': {'hosts', 'nodes', 'mode', 'behaviour'},
        'unresponsive': {'hosts', 'nodes', 'delay_s', 'rpc'},
        'rpc_unresponsive': {'hosts', 'nodes'},
        'partition': {'groups', 'hosts'},
    }[kind]
    extra = sorted(set(request) - allowed - {'kind'})
    if extra:
        raise FaultError('unexpected parameter(s) for a %s fault: %s; allowed: %s'
                         % (kind, ', '.join(extra), ', '.join(sorted(allowed))))
    fault = {'kind': kind}
    if kind == 'transport':
        transport = request.get('transport')
        if transport not in TRANSPORTS:
            raise FaultError('unknown transport %r; expected one of %s' % (transport, ', '.join(TRANSPORTS)))
        fault['transport'] = transport
        if request.get('error_rate') is None and request.get('latency_ms') is None:
            raise FaultError('a transport fault needs error_rate and/or latency_ms')
        fault['error_rate'] = _rate(request.get('error_rate', 0.0) or 0.0, 'error_rate')
        fault['latency_ms'] = _non_negative(request.get('latency_ms', 0.0) or 0.0, 'latency_ms')
        fault['hosts'] = _host_list(request.get('hosts'), known_hosts)
        fault['nodes'] = _node_list(request.get('nodes'), known_nodes)
        fault['mode'] = _mode(request.get('mode'))
    elif kind == 'crash_on_switch':
        fault['hosts'] = _host_list(request.get('hosts'), known_hosts)
        fault['nodes'] = _node_list(request.get('nodes'), known_nodes)
        fault['mode'] = _mode(request.get('mode'), 'target mode')
        behaviour = request.get('behaviour') or 'crash'
        if behaviour not in CRASH_BEHAVIOURS:
            raise FaultError('unknown behaviour %r; expected one of %s' % (behaviour, ', '.join(CRASH_BEHAVIOURS)))
        fault['behaviour'] = behaviour
    elif kind == 'unresponsive':
        fault['hosts'] = _host_list(request.get('hosts'), known_hosts)
        fault['nodes'] = _node_list(request.get('nodes'), known_nodes)
        if not fault['hosts'] and not fault['nodes']:
            raise FaultError('an unresponsive fault needs nodes (host/service_name) or hosts')
        delay = request.get('delay_s')
        fault['delay_s'] = None if delay is None else _non_negative(delay, 'delay_s')
        rpc = request.get('rpc', True)
        if not isinstance(rpc, bool):
            raise FaultError('rpc must be true (the RPC of the node hangs too, as in a hung process) or false, '
                             'got %r' % (rpc,))
        fault['rpc'] = rpc
    elif kind == 'rpc_unresponsive':
        fault['hosts'] = _host_list(request.get('hosts'), known_hosts)
        fault['nodes'] = _node_list(request.get('nodes'), known_nodes)
        if not fault['hosts'] and not fault['nodes']:
            raise FaultError('an rpc_unresponsive fault needs nodes (host/service_name) or hosts')
    elif kind == 'partition':
        groups = request.get('groups')
        if groups is None and request.get('hosts') is not None:
            side = _host_list(request.get('hosts'), known_hosts)
            groups = [side, [h for h in known_hosts if h not in side]]
        if not isinstance(groups, (list, tuple)) or len(groups) < 2:
            raise FaultError('a partition needs at least two host groups (groups: [[...], [...]]) or hosts '
                             '(those hosts against the rest)')
        seen = {}
        clean = []
        for i, group in enumerate(groups):
            members = _host_list(group, known_hosts, what='group %d' % (i + 1))
            if not members:
                raise FaultError('partition group %d is empty' % (i + 1))
            for host in members:
                if host in seen:
                    raise FaultError('host %s is in partition groups %d and %d' % (host, seen[host] + 1, i + 1))
                seen[host] = i
            clean.append(members)
        fault['groups'] = clean
    return fault


def in_scope(fault, host, node_ref, mode):
    """Whether a host/node/mode-scoped fault applies to a node right now.

    ``hosts`` and ``nodes`` together select their union; ``mode`` narrows that down; no scope
    means the whole fleet. The mode is the node's current mode, so nodes that enter that mode
    later are affected too.
    """
    hosts = fault.get('hosts') or ()
    nodes = fault.get('nodes') or ()
    if hosts and nodes:
        if host not in hosts and node_ref not in nodes:
            return False
    elif hosts and host not in hosts:
        return False
    elif nodes and node_ref not in nodes:
        return False
    if fault['kind'] == 'transport' and fault.get('mode') and fault['mode'] != mode:
        return False
    return True
