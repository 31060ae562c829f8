# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Switching one host's nodes batch by batch, asking the guard before every batch.

The ``transport_mode`` action plugin runs in a worker process that ``ansible-playbook`` forked.
If the controller is killed, the worker is not: left alone, it would go on switching the host's
nodes while nobody records or judges them. So the action plugin hands the module one node batch
at a time (the module's ``nodes`` option) and asks the guard before each batch; the guard refuses
when the controller is gone (or the migration was halted or paused meanwhile). At most the batch
in flight completes; a worker whose controller died records what it switched in the ledger
itself, since nobody else will.

Plain Python: ``run_module(args, check_mode)`` returns a transport_mode result and
``may_continue()`` a guard Decision; the unit tests drive it with fakes.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard

TODO = ('would_switch',)
RECONFIGURE = ('would_reconfigure',)


def _names(nodes, results):
    return [n['service_name'] for n in nodes if n.get('result') in results]


def merge(plan, done, stopped_reason=None, mode=None):
    """One transport_mode result from the plan (check mode) and the results of the batches run.

    Nodes of the plan that no batch ran are ``unchanged``/``skipped`` as the plan said, or
    ``not_attempted`` with ``stopped_reason``.
    """
    ran = {}
    warnings, failed_nodes, msgs = [], [], []
    for result in done:
        for node in result.get('nodes') or []:
            ran[node['service_name']] = node
        warnings += [w for w in result.get('warnings') or [] if w not in warnings]
        failed_nodes += result.get('failed_nodes') or []
        if result.get('failed') and result.get('msg'):
            msgs.append(result['msg'])
    nodes = []
    for node in plan.get('nodes') or []:
        name = node['service_name']
        if name in ran:
            nodes.append(ran[name])
        elif node.get('result') in TODO + RECONFIGURE:
            nodes.append(dict(node, result='not_attempted', mode=node.get('previous_mode'), changed=False,
                              error='not attempted: %s' % (stopped_reason or 'another node of this host failed first')))
        else:
            nodes.append(node)
    out = {
        'changed': any(n.get('changed') for n in nodes),
        'mode': mode or plan.get('mode'),
        'nodes': nodes,
        'switched': _names(nodes, ('switched',)),
        'unchanged': _names(nodes, ('unchanged',)),
        'beyond_target': list(plan.get('beyond_target') or []),  # read before any batch ran
        'reconfigured': _names(nodes, ('reconfigured',)),
        'not_switched': _names(nodes, ('failed', 'not_attempted', 'skipped', 'not_ready')),
        'not_ready': [entry for result in done for entry in result.get('not_ready') or []],
        'diff': {'before': {n['service_name']: n.get('previous_mode') for n in nodes},
                 'after': {n['service_name']: n.get('mode') for n in nodes}},
        'node_batches': len(done),
    }
    if warnings:
        out['warnings'] = warnings
    if failed_nodes or msgs or stopped_reason:
        out['failed'] = True
        out['failed_nodes'] = failed_nodes
        parts = msgs[:]
        if stopped_reason:
            parts.append('Stopped before the next node batch: %s.' % stopped_reason)
        parts.append('Switched: %s.' % (', '.join(out['switched']) or 'none'))
        parts.append('Not switched: %s.' % (', '.join(_names(nodes, ('failed', 'not_attempted'))) or 'none'))
        out['msg'] = ' '.join(parts)
    else:
        out['msg'] = 'switched %d node(s) to %s in %d batch(es)' % (len(out['switched']), out['mode'], len(done))
        if out['not_ready']:
            out['msg'] += '; NOT READY yet: %s' % ', '.join(n['service_name'] for n in out['not_ready'])
    return out


class BatchedSwitch:
    """Run the module over ``batch_size`` nodes at a time, with the guard's consent before each.

    ``controller_alive()`` is asked once more at the end: a worker whose controller died during
    its last call hands the result to ``on_orphaned`` (to record it), since nobody will read it.
    """

    def __init__(self, run_module, may_continue, batch_size, controller_alive=None, on_orphaned=None):
        self.run_module = run_module
        self.may_continue = may_continue
        self.batch_size = int(batch_size)
        self.controller_alive = controller_alive or (lambda: True)
        self.on_orphaned = on_orphaned or (lambda result: None)

    def run(self, args):
        """The merged result, or the plain module result when one call does it all."""
        result = self._run(args)
        if result.get('refused') == guard.CONTROLLER_GONE or not self.controller_alive():
            result['orphaned'] = True
            self.on_orphaned(result)
        return result

    def _run(self, args):
        if self.batch_size <= 0:
            return self.run_module(args, False)
        plan = self.run_module(args, True)
        if plan.get('failed') or plan.get('unreachable'):
            return plan  # the module's refusal (a bad transition, antctl down) or no host: nothing was changed
        todo = _names(plan.get('nodes') or [], TODO)
        stopped = _names(plan.get('nodes') or [], RECONFIGURE)
        if len(todo) <= self.batch_size:
            return self.run_module(args, False)
        batches = [todo[i:i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
        done, reason, refused = [], None, None
        for index, batch in enumerate(batches):
            if index:
                decision = self.may_continue()
                if not decision.allowed:
                    reason, refused = decision.reason, decision.refused
                    break
            result = self.run_module(dict(args, nodes=batch + (stopped if index == 0 else [])), False)
            done.append(result)
            if result.get('failed'):
                break
        merged = merge(plan, done, stopped_reason=reason, mode=args.get('mode'))
        if refused:
            merged['refused'] = refused
        return merged
