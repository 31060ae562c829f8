# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nodes: current state, history, health observations, the failure budget, reconciliation."""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger._common import (
    _current_user,
    _iso,
    _json,
    _marks,
    _run_id,
    _unjson,
    _where,
    meta_get,
    meta_set,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger.errors import (
    LedgerError,
)


def node_id_for(host, service_name):
    return f'{host}/{service_name}'


def state_for_mode(mode, previous_state=None):
    """The ledger state a node is in once it runs ``mode``, given the state it was in before.

    libp2p_only: untouched nodes stay ``libp2p_only``; a node that had moved on is ``rolled_back``.
    dual_stack: stays in its dual-stack state; coming back from iroh it is ``dual_stack_stable``
    (it was judged before moving on); otherwise ``dual_stack_testing`` (soaking, not yet judged).
    iroh_primary / iroh_only: the state of the same name.
    """
    if mode == _modes.LIBP2P_ONLY:
        if previous_state in (None, _modes.STATE_LIBP2P_ONLY, _modes.STATE_ROLLED_BACK):
            return previous_state or _modes.STATE_LIBP2P_ONLY
        return _modes.STATE_ROLLED_BACK
    if mode == _modes.DUAL_STACK:
        if previous_state in _modes.DUAL_STACK_STATES:
            return previous_state
        if previous_state in _modes.MIGRATED_STATES:
            return _modes.STATE_DUAL_STACK_STABLE
        return _modes.STATE_DUAL_STACK_TESTING
    if mode in (_modes.IROH_PRIMARY, _modes.IROH_ONLY):
        return mode
    raise LedgerError('unknown transport mode {!r}; expected one of {}'.format(mode, ', '.join(_modes.MODES)))


def unjudged_since(row, to_state, mode, now):
    """Since when a node is switched without a verdict after a transition to ``to_state``/``mode``.

    A forward switch (any stage) starts the clock, ``dual_stack_testing`` keeps it running, a
    re-recorded mode keeps it as it was; a verdict's mark (``dual_stack_stable``) or a move back
    (``libp2p_only``, ``rolled_back``, a lower mode) stops it (None).
    """
    previous = row.get('unjudged_since') if row else None
    from_mode = (row.get('mode') or _modes.STATE_MODE[row['state']]) if row else None
    if to_state == _modes.STATE_DUAL_STACK_TESTING:
        return previous or now
    if to_state not in _modes.MIGRATED_STATES:
        return None
    if from_mode is None or _modes.mode_index(mode) > _modes.mode_index(from_mode):
        return now
    return previous if mode == from_mode else None


def _check_state(state):
    if state not in _modes.STATES:
        raise LedgerError('unknown migration state {!r}; expected one of {}'.format(state, ', '.join(_modes.STATES)))


def _node_row(row):
    out = dict(row)
    out['updated_at'] = _iso(row.get('updated_at'))
    out['health_at'] = _iso(row.get('health_at'))
    out['health_data'] = _unjson(row.get('health_data')) if row.get('health_data') else None
    out['unjudged_since'] = _iso(row.get('unjudged_since'))
    out['ready'] = None if row.get('ready') is None else bool(row['ready'])
    return out


class NodesMixin:
    """Ledger operations on nodes."""

    # -- nodes -----------------------------------------------------------------------------

    def _apply_transition(self, tx, now, item, run_id):
        host, service = str(item['host']), str(item['service_name'])
        node_id = node_id_for(host, service)
        row = tx.one('SELECT * FROM ledger_nodes WHERE node_id = ?', (node_id,))
        from_state = row['state'] if row else None
        from_mode = row['mode'] if row else None
        mode = item.get('mode')
        to_state = item.get('to_state')
        if to_state is None:
            if mode is None:
                raise LedgerError(f'node {node_id}: a transition needs to_state or mode')
            to_state = state_for_mode(mode, from_state)
        _check_state(to_state)
        mode = mode or _modes.STATE_MODE[to_state]
        peer_id = item.get('peer_id') or (row['peer_id'] if row else None)
        version = item.get('version') or (row['version'] if row else None)
        wave = item.get('wave') if item.get('wave') is not None else (row['wave'] if row else None)
        run = _run_id(item.get('run_id', run_id))
        unjudged = unjudged_since(row, to_state, mode, now)
        # Whether it became ready in that mode: what the switch saw; unknown (kept) for a mark or a verdict.
        ready = None if item.get('ready') is None else int(bool(item['ready']))
        if row is None:
            tx.execute('INSERT INTO ledger_nodes (node_id, host, service_name, peer_id, state, mode, version, wave, '
                       'run_id, updated_at, unjudged_since, ready) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                       (node_id, host, service, peer_id, to_state, mode, version, wave, run, now, unjudged, ready))
        else:
            tx.execute('UPDATE ledger_nodes SET peer_id = ?, state = ?, mode = ?, version = ?, wave = ?, run_id = ?, '
                       'updated_at = ?, unjudged_since = ?, ready = COALESCE(?, ready) WHERE node_id = ?',
                       (peer_id, to_state, mode, version, wave, run, now, unjudged, ready, node_id))
        changed = (from_state != to_state or from_mode != mode
                   or (ready is not None and row is not None and row.get('ready') != ready))
        if from_state != to_state or from_mode != mode:
            seconds = item.get('seconds_to_ready')
            tx.execute('INSERT INTO ledger_node_history (node_id, host, service_name, peer_id, from_state, to_state, '
                       'from_mode, to_mode, version, at, run_id, reason, seconds_to_ready) '
                       'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                       (node_id, host, service, peer_id, from_state, to_state, from_mode, mode, version, now, run,
                        item.get('reason'), float(seconds) if seconds is not None else None))
        return {'node_id': node_id, 'from_state': from_state, 'to_state': to_state, 'mode': mode,
                'changed': changed}

    def record_transition(self, host, service_name, peer_id, to_state, mode=None, version=None, reason=None,
                          run_id=None, wave=None, seconds_to_ready=None):
        """Set one node's state and append its history, atomically.

        ``to_state`` may be None when ``mode`` is given: the state then follows from the mode and
        the node's current state (see state_for_mode), decided inside the same transaction.
        Recording the state a node is already in adds no history row (re-runs are idempotent).
        """
        return self.record_transitions([{
            'host': host, 'service_name': service_name, 'peer_id': peer_id, 'to_state': to_state, 'mode': mode,
            'version': version, 'reason': reason, 'wave': wave, 'seconds_to_ready': seconds_to_ready}],
            run_id=run_id)[0]

    def record_transitions(self, items, run_id=None):
        """Several transitions (dicts with record_transition's arguments) in one transaction."""
        now = self._now()
        with self._db.transaction() as tx:
            return [self._apply_transition(tx, now, item, run_id) for item in items]

    def record_observation(self, host, service_name, peer_id=None, mode=None, version=None, healthy=None,
                           status=None, data=None, run_id=None, health=None):
        """Store a node's latest health observation.

        ``health`` is node_health's word (healthy / degraded / unhealthy); ``healthy`` a plain bool.
        A node the ledger does not know yet is registered with the state its mode implies (this is
        how transport_info / node_health results make the fleet's size known). The state of a known
        node is not changed here: drift is reconcile()'s business.
        """
        return self.record_observations([{
            'host': host, 'service_name': service_name, 'peer_id': peer_id, 'mode': mode, 'version': version,
            'healthy': healthy, 'health': health, 'status': status, 'data': data}], run_id=run_id)

    def record_observations(self, items, run_id=None):
        run_id = _run_id(run_id)
        now = self._now()
        registered = 0
        with self._db.transaction() as tx:
            for item in items:
                host, service = str(item['host']), str(item['service_name'])
                node_id = node_id_for(host, service)
                healthy = item.get('healthy')
                health = item.get('health') or (None if healthy is None else ('healthy' if healthy else 'unhealthy'))
                detail = dict(item.get('data') or {})
                if item.get('status'):
                    detail['status'] = item['status']
                row = tx.one('SELECT node_id, peer_id, version, mode FROM ledger_nodes WHERE node_id = ?', (node_id,))
                if row is None:
                    mode = item.get('mode') or _modes.LIBP2P_ONLY
                    state = state_for_mode(mode)
                    # Registered from an observation, not a switch: only a node found in dual_stack_testing
                    # is (by its state) switched without a verdict.
                    tx.execute('INSERT INTO ledger_nodes (node_id, host, service_name, peer_id, state, mode, version, '
                               'run_id, updated_at, health, health_at, health_data, unjudged_since) '
                               'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                               (node_id, host, service, item.get('peer_id'), state, mode, item.get('version'),
                                run_id, now, health, now, _json(detail),
                                now if state == _modes.STATE_DUAL_STACK_TESTING else None))
                    tx.execute('INSERT INTO ledger_node_history (node_id, host, service_name, peer_id, from_state, '
                               'to_state, from_mode, to_mode, version, at, run_id, reason) '
                               'VALUES (?, ?, ?, ?, NULL, ?, NULL, ?, ?, ?, ?, ?)',
                               (node_id, host, service, item.get('peer_id'), state, mode, item.get('version'), now,
                                run_id, 'registered from an observation'))
                    registered += 1
                else:
                    tx.execute('UPDATE ledger_nodes SET health = COALESCE(?, health), health_at = ?, health_data = ?, '
                               'peer_id = COALESCE(peer_id, ?), version = COALESCE(?, version) WHERE node_id = ?',
                               (health, now, _json(detail), item.get('peer_id'), item.get('version'), node_id))
        return {'observed': len(items), 'registered': registered}

    def nodes(self, states=None, hosts=None):
        where, params = [], []
        for column, values in (('state', states), ('host', hosts)):
            if values:
                values = [values] if isinstance(values, str) else list(values)
                where.append(f'{column} IN ({_marks(values)})')
                params += values
        sql = f'SELECT * FROM ledger_nodes{_where(where)} ORDER BY host, service_name'
        with self._db.transaction(write=False) as tx:
            rows = tx.query(sql, params)
        return [_node_row(row) for row in rows]

    def unjudged_nodes(self, hosts=None):
        """Nodes switched forward (any stage) that no gate has passed yet, oldest first."""
        where, params = ['unjudged_since IS NOT NULL'], []
        if hosts:
            where.append(f'host IN ({_marks(hosts)})')
            params += list(hosts)
        with self._db.transaction(write=False) as tx:
            rows = tx.query(f'SELECT * FROM ledger_nodes{_where(where)} ORDER BY host, service_name', params)
        return [_node_row(row) for row in rows]

    def mark_judged(self, hosts, reason, run_id=None):
        """A gate passed ``hosts``: their nodes switched without a verdict are judged now.

        ``dual_stack_testing`` nodes become ``dual_stack_stable`` (a transition with ``reason``); the
        others (a promote's iroh_primary / iroh_only) keep their state and lose the mark. One
        ``nodes_judged`` event lists them all. Returns the node ids.
        """
        run_id = _run_id(run_id)
        now = self._now()
        judged = []
        with self._db.transaction() as tx:
            if not hosts:
                return judged
            rows = tx.query(f'SELECT * FROM ledger_nodes WHERE unjudged_since IS NOT NULL AND host IN '
                            f'({_marks(hosts)}) ORDER BY host, service_name', list(hosts))
            for row in rows:
                if row['state'] == _modes.STATE_DUAL_STACK_TESTING:
                    self._apply_transition(tx, now, {
                        'host': row['host'], 'service_name': row['service_name'],
                        'to_state': _modes.STATE_DUAL_STACK_STABLE, 'mode': row['mode'], 'reason': reason}, run_id)
                else:
                    tx.execute('UPDATE ledger_nodes SET unjudged_since = NULL WHERE node_id = ?', (row['node_id'],))
                judged.append(row['node_id'])
            if judged:
                self._event(tx, 'nodes_judged', run_id, {'reason': reason, 'nodes': judged[:500],
                                                         'count': len(judged)}, now)
        return judged

    def node(self, host, service_name):
        with self._db.transaction(write=False) as tx:
            row = tx.one('SELECT * FROM ledger_nodes WHERE node_id = ?', (node_id_for(host, service_name),))
        return _node_row(row) if row else None

    def node_states(self):
        """{node_id: state} for every node in the ledger."""
        with self._db.transaction(write=False) as tx:
            rows = tx.query('SELECT node_id, state FROM ledger_nodes')
        return {row['node_id']: row['state'] for row in rows}

    def node_modes(self):
        """{node_id: transport mode} — the shape _modes.partition_violations() wants."""
        with self._db.transaction(write=False) as tx:
            rows = tx.query('SELECT node_id, mode, state FROM ledger_nodes')
        return {row['node_id']: row['mode'] or _modes.STATE_MODE[row['state']] for row in rows}

    def history(self, node_id=None, limit=100, run_id=None):
        """Transitions, newest first."""
        run_id = _run_id(run_id)
        where, params = [], []
        if node_id:
            where.append('node_id = ?')
            params.append(node_id)
        if run_id is not None:
            where.append('run_id = ?')
            params.append(run_id)
        sql = f'SELECT * FROM ledger_node_history{_where(where)} ORDER BY at DESC, id DESC LIMIT ?'
        with self._db.transaction(write=False) as tx:
            rows = tx.query(sql, params + [int(limit)])
        return [dict(row, at=_iso(row['at'])) for row in rows]

    def switch_times(self, limit=1000, direction=None):
        """Measured seconds-to-ready of the most recent switches, newest first (floats); ``direction``
        'backward' keeps the switches back to an earlier mode (rollbacks and the canary's drill)."""
        with self._db.transaction(write=False) as tx:
            rows = tx.query('SELECT seconds_to_ready, from_mode, to_mode FROM ledger_node_history '
                            'WHERE seconds_to_ready IS NOT NULL ORDER BY at DESC, id DESC LIMIT ?',
                            (int(limit) * (4 if direction else 1),))
        if direction == 'backward':
            rows = [r for r in rows if r['from_mode'] in _modes.MODES and r['to_mode'] in _modes.MODES
                    and _modes.mode_index(r['to_mode']) < _modes.mode_index(r['from_mode'])]
        return [float(row['seconds_to_ready']) for row in rows[:int(limit)]]

    # -- failures (the budget across waves) -------------------------------------------------

    def record_failure(self, host, service_name=None, peer_id=None, reason=None, run_id=None):
        """A node (or, without service_name, a whole host ``host/*``) failed during a run."""
        run_id = _run_id(run_id)
        node_id = node_id_for(host, service_name or '*')
        with self._db.transaction() as tx:
            now = self._now()
            tx.execute('INSERT INTO ledger_failures (node_id, host, service_name, at, run_id, reason) '
                       'VALUES (?, ?, ?, ?, ?, ?)', (node_id, str(host), service_name, now, run_id, reason))
            self._event(tx, 'node_failed', run_id,
                        {'node_id': node_id, 'host': host, 'service_name': service_name, 'peer_id': peer_id,
                         'reason': reason}, now)
        return node_id

    def _budget_since(self, tx):
        row = tx.one("SELECT MAX(at) AS at FROM ledger_events WHERE kind = 'budget_reset'")
        return row['at'] if row and row['at'] is not None else 0.0

    def failures(self, run_ids=None, since=None):
        """Failed node ids (distinct), by default since the failure budget was last reset (reset_budget())."""
        with self._db.transaction(write=False) as tx:
            if since is None and run_ids is None:
                since = self._budget_since(tx)
            where, params = [], []
            if since is not None:
                where.append('at > ?')
                params.append(float(since))
            if run_ids is not None:
                run_ids = [_run_id(r) for r in run_ids]
                if not run_ids:
                    return []
                where.append(f'run_id IN ({_marks(run_ids)})')
                params += run_ids
            rows = tx.query(f'SELECT DISTINCT node_id FROM ledger_failures{_where(where)} ORDER BY node_id', params)
        return [row['node_id'] for row in rows]

    def failures_total(self, run_ids=None, since=None):
        """How many distinct nodes failed: the failure budget across waves counts these.

        Without arguments: since the budget was last reset - an explicit, recorded action (reset_budget()); an
        acknowledged halt does not reset it, so failures accumulate across waves.
        """
        return len(self.failures(run_ids=run_ids, since=since))

    def set_failure_budget(self, budget):
        """The budget the migration_tracker enforces (its failure_budget option), kept for every reader."""
        with self._db.transaction() as tx:
            meta_set(tx, 'failure_budget', int(budget))

    def failure_budget(self):
        """{used, budget (None: not known yet), since}: the failures counted against the budget."""
        with self._db.transaction(write=False) as tx:
            budget = meta_get(tx, 'failure_budget')
            since = self._budget_since(tx)
        return {'used': self.failures_total(), 'budget': budget, 'since': _iso(since) if since else None}

    def reset_budget(self, operator, reason, run_id=None):
        """Start counting failures from zero again: a separate, recorded action with its operator and reason."""
        if not reason:
            raise LedgerError('resetting the failure budget needs a reason')
        used = self.failures_total()
        with self._db.transaction() as tx:
            self._event(tx, 'budget_reset', _run_id(run_id), {'operator': operator, 'reason': reason,
                                                              'failures_before': used})
        return used
    # -- reconciliation --------------------------------------------------------------------

    @staticmethod
    def _observed_items(observed):
        """Flatten {host: [node, ...]} or [{host, service_name, ...}] or [{host, nodes: [...]}]."""
        if isinstance(observed, dict):
            for host, nodes in observed.items():
                if isinstance(nodes, dict):
                    nodes = nodes.get('nodes', [])
                for node in nodes or []:
                    yield dict(node, host=node.get('host', host))
            return
        for entry in observed or []:
            if 'nodes' in entry and 'service_name' not in entry:
                for node in entry.get('nodes') or []:
                    yield dict(node, host=node.get('host', entry.get('host')))
            else:
                yield dict(entry)

    def reconcile(self, observed, fix=False, operator=None, run_id=None):
        """Compare the ledger with what transport_info reports; optionally fix the ledger.

        ``observed``: {host: [node dicts]} (or a list of node dicts with ``host``, or of
        {host, nodes}); a node dict has service_name, peer_id, mode, status, version. Only hosts
        present in ``observed`` are compared. Drift kinds: ``mode_mismatch`` (the ledger's state
        implies another mode, e.g. a node restarted by hand), ``not_in_ledger``, ``peer_id_changed``,
        ``not_on_host`` (the ledger knows a node the host does not report; reported, never deleted).
        With ``fix=True`` states, new nodes and peer ids are written, each with the reason, and a
        ``reconcile`` event is logged.
        """
        run_id = _run_id(run_id)
        items = list(self._observed_items(observed))
        hosts = sorted({str(item['host']) for item in items})
        operator = operator or _current_user()
        drift = []
        now = self._now()
        with self._db.transaction(write=fix) as tx:
            known = {}
            if hosts:
                rows = tx.query(f'SELECT * FROM ledger_nodes WHERE host IN ({_marks(hosts)})', hosts)
                known = {row['node_id']: row for row in rows}
            seen = set()
            for item in items:
                node_id = node_id_for(item['host'], item['service_name'])
                seen.add(node_id)
                row = known.get(node_id)
                mode = item.get('mode')
                base = {'node_id': node_id, 'host': str(item['host']), 'service_name': item['service_name'],
                        'observed_mode': mode, 'observed_status': item.get('status'),
                        'ledger_state': row['state'] if row else None,
                        'ledger_mode': (row['mode'] or _modes.STATE_MODE[row['state']]) if row else None}
                if mode is not None and mode not in _modes.MODES:
                    drift.append(dict(base, kind='unknown_mode', fixed=False))
                    continue
                if row is None:
                    entry = dict(base, kind='not_in_ledger', fixed=False)
                    if fix and mode:
                        applied = self._apply_transition(tx, now, {
                            'host': item['host'], 'service_name': item['service_name'], 'peer_id': item.get('peer_id'),
                            'mode': mode, 'version': item.get('version'),
                            'reason': f'reconcile: host reports {mode}, ledger did not know the node'}, run_id)
                        entry['new_state'] = applied['to_state']
                        entry['fixed'] = True
                    drift.append(entry)
                    continue
                if item.get('peer_id') and row['peer_id'] and item['peer_id'] != row['peer_id']:
                    entry = dict(base, kind='peer_id_changed', ledger_peer_id=row['peer_id'],
                                 observed_peer_id=item['peer_id'], fixed=False)
                    if fix:
                        tx.execute('UPDATE ledger_nodes SET peer_id = ?, updated_at = ? WHERE node_id = ?',
                                   (item['peer_id'], now, node_id))
                        entry['fixed'] = True
                    drift.append(entry)
                if mode and base['ledger_mode'] != mode:
                    entry = dict(base, kind='mode_mismatch', fixed=False,
                                 new_state=state_for_mode(mode, row['state']))
                    if fix:
                        self._apply_transition(tx, now, {
                            'host': item['host'], 'service_name': item['service_name'], 'peer_id': item.get('peer_id'),
                            'to_state': entry['new_state'], 'mode': mode, 'version': item.get('version'),
                            'reason': f"reconcile: ledger said {row['state']} ({base['ledger_mode']}), "
                                      f'host reports {mode}'}, run_id)
                        entry['fixed'] = True
                    drift.append(entry)
            for node_id, row in sorted(known.items()):
                if node_id not in seen:
                    drift.append({'node_id': node_id, 'host': row['host'], 'service_name': row['service_name'],
                                  'kind': 'not_on_host', 'ledger_state': row['state'], 'ledger_mode': row['mode'],
                                  'observed_mode': None, 'observed_status': None, 'fixed': False})
            report = {'checked': len(items), 'hosts': hosts, 'in_sync': not drift, 'drift': drift,
                      'fixed': sum(1 for d in drift if d['fixed'])}
            if fix:
                self._event(tx, 'reconcile', run_id, {
                    'operator': operator, 'checked': len(items), 'drift': len(drift), 'fixed': report['fixed'],
                    'nodes': [{'node_id': d['node_id'], 'kind': d['kind'], 'new_state': d.get('new_state')}
                              for d in drift][:200]}, now)
        return report

    # -- write-ahead intents ------------------------------------------------------------------

    def open_intent(self, host, mode, run_id=None, holder=None):
        """Record that ``host`` is about to be switched to ``mode``, before anything touches it.

        Raises a LedgerError (nothing may be switched then) when the write fails."""
        now = self._now()
        with self._db.transaction() as tx:
            tx.execute('DELETE FROM ledger_intents WHERE host = ?', (str(host),))
            tx.execute('INSERT INTO ledger_intents (host, mode, run_id, holder, at) VALUES (?, ?, ?, ?, ?)',
                       (str(host), str(mode), _run_id(run_id), holder, now))

    def close_intent(self, host, items, run_id=None):
        """Record a switch's transitions and end ``host``'s intent, in one transaction: either both or neither."""
        now = self._now()
        with self._db.transaction() as tx:
            done = [self._apply_transition(tx, now, item, run_id) for item in items]
            tx.execute('DELETE FROM ledger_intents WHERE host = ?', (str(host),))
        return done

    def intents(self):
        """Hosts about to be switched whose result was not recorded yet: [{host, mode, run_id, holder, at}]."""
        with self._db.transaction(write=False) as tx:
            rows = tx.query('SELECT * FROM ledger_intents ORDER BY at, host')
        return [dict(row, at=_iso(row['at'])) for row in rows]
