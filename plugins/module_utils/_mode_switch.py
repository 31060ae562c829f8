# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine of the ``transport_mode`` module: plan, validate and apply one host's mode change.

The module (``plugins/modules/transport_mode.py``) is its documentation, argument spec and a thin
``main()``; everything it does happens here, where unit tests drive it with a fake host and clock.
Shipped to fleet hosts with the module (Ansiballz bundles it): standard library only.
"""

from __future__ import annotations

import time

from ansible_collections.autonomi.network_migration.plugins.module_utils._antctl import STATUS_RUNNING, select_nodes
from ansible_collections.autonomi.network_migration.plugins.module_utils._common import parallel_map
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import (
    AntctlError,
    CommandError,
    MetricsError,
    NodeError,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import (
    IROH_ONLY,
    LIBP2P_ONLY,
    MODES,
    TransitionError,
    check_transition,
    partition_violations,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_metrics import READINESS_METRICS
from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import dropin_text

# Readiness polls come every POLL_INTERVAL seconds while a round scrapes one node (the probe: until the batch
# comes up); rounds that scrape more (nodes not answering) back off to POLL_INTERVAL_MAX (x POLL_BACKOFF each);
# crash checks through antctl status come STATUS_CHECK_INTERVAL seconds after the restart, then at intervals
# doubling up to STATUS_CHECK_INTERVAL_MAX, and only while a pending node's metrics do not answer (a node that
# answers is running: no antctl call for it; one restarting under load may stay silent for seconds).
POLL_INTERVAL = 0.25
POLL_INTERVAL_MAX = 0.5
POLL_BACKOFF = 1.5
STATUS_CHECK_INTERVAL = 2.0
STATUS_CHECK_INTERVAL_MAX = 8.0
# A node must be seen stopped this many crash checks in a row to count as crashed.
STOPPED_CHECKS_TO_FAIL = 2


class ModeSwitcher:
    """Plans and applies one host's mode change; returns the module result as a dict."""

    def __init__(self, params, reader, check_mode=False, clock=time.monotonic, sleep=time.sleep):
        self.params = params
        self.reader = reader
        self.antctl = reader.antctl
        self.systemd = reader.systemd
        self.dropin_diffs = {}
        self.check_mode = check_mode
        self.clock = clock
        self.sleep = sleep
        self.target = params['mode']

    # -- planning -------------------------------------------------------------------------

    def _read_node(self, node):
        """The mode of a running node, from its metrics; NodeError when unknowable."""
        name = node['service_name']
        try:
            metrics = self.reader.scrape(node, names=READINESS_METRICS)
            mode = metrics.mode
        except MetricsError as exc:
            raise NodeError(f'cannot read the transport mode of {name}: {exc}') from None
        if mode is None:
            raise NodeError(f'{name} does not report its transport mode (metric ant_node_transport_mode); '
                            'it must run a dual-stack capable ant-node')
        return mode

    def _current_mode(self, node):
        return self._read_node(node)

    def _read_modes(self, nodes):
        """{service: mode, or the NodeError that says why it is unknowable} of running nodes, read in parallel."""
        def read(node):
            try:
                return node['service_name'], self._read_node(node)
            except NodeError as exc:
                return node['service_name'], exc
        return dict(parallel_map(read, nodes))

    def _blind_rollback(self, entry, node, exc):
        """Whether a node whose mode cannot be read is rolled back anyway.

        A rollback to libp2p_only is valid from every mode, so an unreadable node (hung metrics,
        a node that predates the mode metric) does not stop it: rollback must always work. Its
        previous mode is what its drop-in says, if anything.
        """
        if not (self.params['allow_rollback'] and self.target == LIBP2P_ONLY):
            return False
        entry.update(previous_mode=node.get('configured_mode'), _kind='backward',
                     note=f'mode unreadable ({exc}); rolled back anyway, libp2p_only is valid from every mode')
        return True

    def _plan_stopped(self, entry, node):
        """A node that is not running is skipped, except in a rollback.

        A rollback sets the drop-in of a stopped node that would come back in a later mode (or in
        an unknown one, when going back to libp2p_only, which is valid from every mode), so that
        starting it later cannot bring, say, iroh_only back while the fleet returns to
        libp2p_only. It stays stopped.
        """
        configured = node.get('configured_mode')
        later = configured in MODES and MODES.index(self.target) < MODES.index(configured)
        unknown = configured not in MODES and self.target == LIBP2P_ONLY
        if self.params['allow_rollback'] and (later or unknown):
            entry.update(previous_mode=configured, mode=configured, _kind='reconfigure')
            return
        entry.update(result='skipped', error=f"node is {node['status']}; its mode cannot be read or changed")

    def plan(self):
        """Read the host, validate every transition, return the per-node entries."""
        registry = self.reader.registry()
        all_nodes = select_nodes(registry)
        selected = select_nodes(registry, self.params['nodes'])
        selected_names = {n['service_name'] for n in selected}
        modes = self._read_modes([n for n in selected if n['status'] == STATUS_RUNNING])
        entries, problems = [], []
        for node in selected:
            entry = {
                'service_name': node['service_name'], 'peer_id': node['peer_id'], 'version': node['version'],
                'previous_mode': None, 'mode': None, 'result': None, 'changed': False,
                'seconds_to_ready': None, 'seconds_waited': None, 'error': None, 'restored': None,
                'restore_error': None, 'note': None,
                'dropin': self.systemd.dropin_path(node['service_name']), '_node': node,
            }
            entries.append(entry)
            if node['status'] != STATUS_RUNNING:
                self._plan_stopped(entry, node)
                continue
            found = modes[node['service_name']]
            if isinstance(found, NodeError):
                if not self._blind_rollback(entry, node, found):
                    raise found
                continue
            entry['previous_mode'] = found
            entry['mode'] = entry['previous_mode']
            try:
                entry['_kind'] = check_transition(entry['previous_mode'], self.target,
                                                  allow_rollback=self.params['allow_rollback'],
                                                  node=node['service_name'])
            except TransitionError as exc:
                problems.append(str(exc))
        # A drop-in only works next to the service's unit: refuse before writing anything anywhere else.
        missing = [e['service_name'] for e in entries if e.get('_kind') in ('forward', 'backward', 'reconfigure')
                   and not self.systemd.has_unit(e['service_name'])]
        if missing:
            problems.append(f"no unit file for {', '.join(missing)} in {self.systemd.unit_dir}: set unit_dir to the "
                            'directory that holds the node services (antctl installs them in /etc/systemd/system, '
                            'or ~/.config/systemd/user in user mode)')
        # No node may become iroh_only while a node keeps running libp2p_only. The module sees one
        # host; the fleet-wide rule is the playbook's (and the ledger's) business.
        if self.target == IROH_ONLY and any(e.get('_kind') == 'forward' for e in entries):
            after = {e['service_name']: (self.target if e.get('_kind') in ('forward', 'backward') else e['mode'])
                     for e in entries if e['mode']}
            for node in all_nodes:
                if node['service_name'] not in selected_names and node['status'] == STATUS_RUNNING:
                    after[node['service_name']] = self._current_mode(node)
            blockers = partition_violations(self.target, after)
            if blockers:
                verb = 'runs' if len(blockers) == 1 else 'run'
                problems.append(f"cannot switch to iroh_only while {', '.join(blockers)} of this host still {verb} "
                                'libp2p_only (iroh_only and libp2p_only nodes cannot reach each other)')
        if problems:
            raise TransitionError('refused, nothing was changed: ' + '; '.join(problems))
        return entries

    # -- applying -------------------------------------------------------------------------

    def _set_dropin(self, entry, mode):
        """Write the node's drop-in for ``mode`` (nothing in check mode); remember it for the diff."""
        name = entry['service_name']
        before = self.systemd.read_dropin(name)
        after = dropin_text(mode, service=name, peer_id=entry['peer_id'])
        if before != after:
            first = self.dropin_diffs.get(name, {}).get('before', before)
            self.dropin_diffs[name] = {'before': first, 'after': after}
            if not self.check_mode:
                self.systemd.write_dropin(name, after)
        return before != after

    def _configure(self, entries, mode, errors):
        """Set the drop-ins of ``entries`` to ``mode`` and reload systemd; record failures in ``errors``."""
        written = []
        for entry in entries:
            try:
                self._set_dropin(entry, mode)
                written.append(entry)
            except CommandError as exc:
                errors[entry['service_name']] = f'cannot set its drop-in: {exc}'
        if written:
            try:
                self.systemd.daemon_reload()
            except CommandError as exc:
                for entry in written:
                    errors[entry['service_name']] = f'systemd did not reload the drop-in: {exc}'
                return []
        return written

    def _restart(self, entries, mode, errors):
        """Restart ``entries`` in ``mode``: drop-ins, one daemon-reload, then the restarts.

        With no ``interval`` one ``systemctl restart a b ...`` restarts the whole batch (systemctl
        names each unit it could not restart); with an interval, one call per service, paced.
        No antctl call: a node whose RPC hangs cannot make the other nodes' restarts fail.
        Returns {service: clock when its restart returned}: each node's ready timeout counts from it.
        """
        written = self._configure(entries, mode, errors)
        restarted = {}
        if not self.params['interval'] or len(written) < 2:
            names = [e['service_name'] for e in written]
            for name, error in self.systemd.restart_many(names).items():
                errors[name] = f'systemctl could not restart it: {error}'
            now = self.clock()
            return dict.fromkeys(names, now)
        for index, entry in enumerate(written):
            try:
                self.systemd.restart(entry['service_name'])
            except CommandError as exc:
                errors[entry['service_name']] = f'systemctl could not restart it: {exc}'
            restarted[entry['service_name']] = self.clock()
            if index < len(written) - 1:
                self.sleep(self.params['interval'] / 1000.0)
        return restarted

    def _observe(self, entry, mode):
        """(ready, what was seen, current mode or None) of one node against ``mode``."""
        try:
            metrics = self.reader.scrape(entry['_node'], names=READINESS_METRICS)
            current, peers = metrics.mode, metrics.connected_peers
        except MetricsError as exc:
            return False, str(exc), None
        ready = current == mode and peers is not None and peers > self.params['ready_peers']
        return ready, f'mode {current}, {peers} connected peers', current

    def _wait_ready(self, entries, mode, started, switch_errors, restarted=None):
        """Wait until each entry runs ``mode`` and is ready. Returns (ready, failed, waited) dicts.

        Each node has ``ready_timeout`` seconds from its own restart (``restarted``; ``started``
        for a node with none). ``waited``: seconds waited for each node that timed out (also in
        ``failed``). The pause between rounds backs off. Nodes restarted together come up
        together, so a round scrapes one pending node in turn (the probe), every node whose
        metrics did not answer last time (it may have crashed) and every node whose time is up
        (never timed out on an old answer); when one of them is ready, the same round scrapes
        every other pending node in parallel.
        """
        ready, failed, last, stopped, waited = {}, {}, {}, {}, {}
        restarted = restarted or {}
        pending = {}
        for entry in entries:
            name = entry['service_name']
            if name in switch_errors:
                # The switch failed; a node that runs the new mode anyway still gets its chance.
                ok, seen, current = self._observe(entry, mode)
                if current != mode:
                    failed[name] = switch_errors[name]
                    continue
            pending[name] = entry
        since = {name: restarted.get(name, started) for name in pending}
        order = sorted(pending, key=lambda n: (since[n], n))  # probes: the earliest restarted first
        turn = 0
        timeout = self.params['ready_timeout']
        last_status_check = self.clock()
        status_interval = STATUS_CHECK_INTERVAL
        pause = POLL_INTERVAL
        silent = set()  # pending nodes whose metrics did not answer at their last scrape
        while pending:
            now = self.clock()
            due = {n for n in pending if now >= since[n] + timeout}
            probes = [n for n in order if n in pending]
            probe = probes[turn % len(probes)]
            turn += 1
            observe = {probe} | (silent & set(pending)) | due
            seen = dict(self._observe_many(pending, observe, mode))
            if any(ok for ok, _seen, _current in seen.values()):
                seen.update(self._observe_many(pending, set(pending) - observe, mode))
            for name, (ok, last[name], current) in seen.items():
                silent.discard(name)
                if ok:
                    ready[name] = round(self.clock() - since[name], 2)
                    del pending[name]
                elif current is None:
                    silent.add(name)
            now = self.clock()
            for name in [n for n in due if n in pending]:
                del pending[name]
                waited[name] = round(now - since[name], 1)
                failed[name] = (f"not ready within {timeout} s: {last.get(name, 'no answer')} "
                                f"(need mode {mode} and more than {self.params['ready_peers']} connected peers)")
            if not pending:
                break
            # Only a node that does not answer may have crashed: then ask antctl (backing off).
            if silent & set(pending) and now - last_status_check >= status_interval:
                last_status_check = now
                status_interval = min(STATUS_CHECK_INTERVAL_MAX, status_interval * 2)
                for name, status in self._statuses(pending).items():
                    stopped[name] = stopped.get(name, 0) + 1 if status != STATUS_RUNNING else 0
                    if stopped[name] >= STOPPED_CHECKS_TO_FAIL:
                        failed[name] = f'node stopped after the restart (antctl status: {status})'
                        del pending[name]
                if not pending:
                    break
            deadline = min(since[n] for n in pending) + timeout
            self.sleep(max(0.0, min(pause, deadline - self.clock())))
            # A round of one scrape (the probe) costs next to nothing: only wider rounds back off.
            pause = POLL_INTERVAL if len(seen) <= 1 else min(POLL_INTERVAL_MAX, pause * POLL_BACKOFF)
        return ready, failed, waited

    def _observe_many(self, pending, names, mode):
        """[(service, (ready, seen, current mode))] of the ``names`` among ``pending``, scraped in parallel."""
        return parallel_map(lambda name: (name, self._observe(pending[name], mode)), sorted(names))

    def _statuses(self, pending):
        try:
            nodes = self.antctl.status()
        except AntctlError:
            return {}  # antctl status failing is not evidence that a node crashed
        return {n['service_name']: n['status'] for n in nodes if n['service_name'] in pending}

    def _restore(self, failed_entries):
        """Put failed nodes back in their previous mode; fill ``restored`` / ``restore_error``."""
        to_restore = []
        for entry in failed_entries:
            if entry['previous_mode'] is None:
                entry.update(restored=False, restore_error='its previous mode is unknown')
                continue
            ok, _seen, _current = self._observe(entry, entry['previous_mode'])
            if ok:
                entry['restored'] = True  # it never left its previous mode
                entry['mode'] = entry['previous_mode']
            else:
                to_restore.append(entry)
        by_mode = {}
        for entry in to_restore:
            by_mode.setdefault(entry['previous_mode'], []).append(entry)
        for mode, entries in by_mode.items():
            errors = {}
            started = self.clock()
            restarted = self._restart(entries, mode, errors)
            self._start_stopped([e for e in entries if e['service_name'] not in errors], errors)
            ready, failed, _waited = self._wait_ready(entries, mode, started, errors, restarted)
            for entry in entries:
                name = entry['service_name']
                entry['restored'] = name in ready
                if name in ready:
                    entry['mode'] = mode
                else:
                    entry['restore_error'] = failed.get(name)
                    entry['mode'] = self._observe(entry, mode)[2]

    def _start_stopped(self, entries, errors):
        """Start the nodes a crash left stopped (systemctl restart of a failed unit may not be enough)."""
        names = [e['service_name'] for e in entries]
        for name, status in self._statuses(names).items():
            if status == STATUS_RUNNING:
                continue
            try:
                self.systemd.start(name)
            except CommandError as exc:
                errors[name] = f'systemctl could not start it: {exc}'

    def _reconfigure(self, entries):
        """Set the drop-in of stopped nodes without starting them (rollbacks only)."""
        if self.check_mode:
            for entry in entries:
                self._set_dropin(entry, self.target)
            return
        errors = {}
        written = self._configure(entries, self.target, errors)
        for entry in entries:
            if entry in written:
                entry.update(result='reconfigured', mode=self.target, changed=True)
            else:
                entry.update(result='failed', changed=True, error=errors[entry['service_name']])

    def apply(self, entries):
        todo = [e for e in entries if e['result'] is None and e.get('_kind') in ('forward', 'backward')]
        stopped = [e for e in entries if e.get('_kind') == 'reconfigure']
        for entry in entries:
            if entry['result'] is None and entry.get('_kind') == 'none':
                entry['result'] = 'unchanged'
        if self.check_mode:
            for entry in todo:
                self._set_dropin(entry, self.target)
                entry.update(result='would_switch', mode=self.target, changed=True)
            self._reconfigure(stopped)
            for entry in stopped:
                entry.update(result='would_reconfigure', mode=self.target, changed=True)
            return
        # First, and whatever happens to the running nodes: nothing restarts, and a stopped node must
        # not come back later in a mode the fleet is leaving.
        self._reconfigure(stopped)
        size = self.params['batch_size'] if self.params['batch_size'] > 0 else len(todo) or 1
        batches = [todo[i:i + size] for i in range(0, len(todo), size)]
        failed_entries = []
        for index, batch in enumerate(batches):
            started, errors = self.clock(), {}
            restarted = self._restart(batch, self.target, errors)
            ready, failed, waited = self._wait_ready(batch, self.target, started, errors, restarted)
            for entry in batch:
                name = entry['service_name']
                entry['changed'] = True
                if name in ready:
                    entry.update(result='switched', mode=self.target, seconds_to_ready=ready[name])
                elif name in waited and entry.get('_kind') == 'backward':
                    # A rollback degrades, never fails, on a slow node: it stays configured for the
                    # earlier mode, is reported, and the host's other batches go on.
                    entry.update(result='not_ready', error=failed[name], seconds_waited=waited[name])
                    entry['mode'] = self._observe(entry, self.target)[2]
                else:
                    entry.update(result='failed', error=failed[name])
                    entry['mode'] = self._observe(entry, self.target)[2]
                    failed_entries.append(entry)
            if failed_entries:
                for later in batches[index + 1:]:
                    for entry in later:
                        entry.update(result='not_attempted',
                                     error='not attempted: another node of this host failed first')
                break
        # A failed rollback is not undone: the node stays configured for the earlier (safer) mode.
        forward = [e for e in failed_entries if e.get('_kind') == 'forward']
        if forward and self.params['restore_on_failure']:
            self._restore(forward)

    # -- result ---------------------------------------------------------------------------

    def run(self):
        entries = self.plan()
        self.apply(entries)
        return self.result(entries)

    def result(self, entries):
        def names(*results):
            return [e['service_name'] for e in entries if e['result'] in results]

        failed = [e for e in entries if e['result'] == 'failed']
        not_ready = [e for e in entries if e['result'] == 'not_ready']
        switched = names('switched', 'would_switch')
        reconfigured = names('reconfigured', 'would_reconfigure')
        result = {
            'changed': any(e['changed'] for e in entries),
            'mode': self.target,
            'nodes': [{k: v for k, v in e.items() if not k.startswith('_')} for e in entries],
            'switched': switched,
            'unchanged': names('unchanged'),
            'beyond_target': [e['service_name'] for e in entries if e['previous_mode'] in MODES
                              and MODES.index(e['previous_mode']) > MODES.index(self.target)],
            'reconfigured': reconfigured,
            'not_switched': names('failed', 'not_attempted', 'skipped', 'not_ready'),
            'not_ready': [{'service_name': e['service_name'], 'seconds_waited': e['seconds_waited'],
                           'mode': e['mode'], 'error': e['error']} for e in not_ready],
            'diff': [{
                'before_header': 'transport modes', 'after_header': 'transport modes',
                'before': {e['service_name']: e['previous_mode'] for e in entries},
                'after': {e['service_name']: e['mode'] for e in entries},
            }] + [{
                'before_header': self.systemd.dropin_path(name), 'after_header': self.systemd.dropin_path(name),
                'before': change['before'] or '', 'after': change['after'] or '',
            } for name, change in self.dropin_diffs.items()],
        }
        skipped = names('skipped')
        result['warnings'] = []
        if skipped:
            result['warnings'].append('{} not running, left alone: {}'.format(
                'node is' if len(skipped) == 1 else 'nodes are', ', '.join(skipped)))
        not_ready_text = '; '.join(f"{e['service_name']} (waited {e['seconds_waited']} s: {e['error']})"
                                   for e in not_ready)
        if not_ready:
            result['warnings'].append(f'rolled back to {self.target} but not ready yet, left configured for '
                                      f'{self.target}: {not_ready_text}')
        if not result['warnings']:
            del result['warnings']
        if failed:
            result['failed'] = True
            result['failed_nodes'] = [{'service_name': e['service_name'], 'error': e['error']} for e in failed]
            attempted = len(switched) + len(failed) + len(names('not_attempted'))
            reasons = '; '.join(f"{e['service_name']}: {e['error']}" for e in failed)
            parts = [f'{len(failed)} of {attempted} node(s) failed to switch to {self.target}: {reasons}.']
            parts.append('Switched: %s.' % (', '.join(switched) or 'none'))
            parts.append('Not switched: %s.' % (', '.join(names('failed', 'not_attempted')) or 'none'))
            for entry in failed:
                if entry['restored']:
                    parts.append(f"{entry['service_name']} is back in {entry['previous_mode']}.")
                elif entry['restored'] is False:
                    parts.append('{} could NOT be put back in {}: {}.'.format(
                        entry['service_name'], entry['previous_mode'], entry['restore_error']))
                elif entry.get('_kind') == 'backward':
                    parts.append(f"{entry['service_name']} was left configured for {self.target} "
                                 '(a rollback is not undone).')
                else:
                    parts.append(f"{entry['service_name']} was left as it is (restore_on_failure is false).")
            if not_ready:
                parts.append(f'Not ready yet (rolled back, configured for {self.target}): {not_ready_text}.')
            result['msg'] = ' '.join(parts)
        elif switched or reconfigured:
            parts = []
            if switched:
                parts.append(f"{'would switch' if self.check_mode else 'switched'} {', '.join(switched)}")
            if reconfigured:
                parts.append(f"{'would set' if self.check_mode else 'set'} stopped {', '.join(reconfigured)}")
            result['msg'] = f"{' and '.join(parts)} to {self.target}"
            if not_ready:
                result['msg'] += f'; NOT READY yet: {not_ready_text}'
        elif not_ready:
            result['msg'] = f'restarted in {self.target} but NOT READY yet: {not_ready_text}'
        else:
            result['msg'] = f'every selected node already runs {self.target}'
        return result


def check_params(params):
    """Ranges the argument spec cannot express; returns the problems (empty when fine)."""
    problems = []
    for name, low in (('interval', 0), ('batch_size', 0), ('ready_peers', 0), ('ready_timeout', 1),
                      ('antctl_timeout', 1)):
        if params[name] < low:
            problems.append(f'{name} must be at least {low}, got {params[name]}')
    if params['metrics_timeout'] <= 0:
        problems.append(f"metrics_timeout must be positive, got {params['metrics_timeout']}")
    return problems
