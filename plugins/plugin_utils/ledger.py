# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration ledger: every node's migration state, its history, runs, events, flags, the lock.

One implementation used by the migration_tracker callback, the gate and guard action plugins and
the operator CLI. Two backends with the same schema and behaviour: a SQLite file (the default)
and PostgreSQL (a ``postgresql://`` DSN, for AWX). See docs/ledger.md.

    ledger = open_ledger(resolve_ledger_location())
    ledger.record_transition('host-1', 'antnode3', '12D3KooW...', 'dual_stack_testing', run_id=run)
    ledger.progress()['progress_percent']

Every public write is one transaction: a controller killed at any moment leaves either the whole
write or none of it.
"""

from __future__ import annotations

import datetime
import getpass
import json
import multiprocessing
import os
import re
import socket
import time

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils._ledger_errors import (
    HaltNeedsAcknowledgement,
    LedgerError,
    LedgerForeignDatabase,
    LedgerHalted,
    LedgerLocked,
    LedgerPaused,
    LedgerSchemaTooNew,
    LedgerUnavailable,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils._ledger_location import (
    DEFAULT_LEDGER,
    DSN_PREFIXES,
    ENV_LEDGER,
    INI_KEY,
    INI_SECTION,
    is_dsn,
    resolve_ledger_location,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils._ledger_metrics import (
    render_metrics,
    write_atomically,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils._ledger_schema import (
    APPLICATION,
    META_TABLE,
    SCHEMA_VERSION,
    SQLITE_APPLICATION_ID,
    statements,
)

__all__ = [
    'DEFAULT_LEDGER', 'DEFAULT_STALE_AFTER', 'DSN_PREFIXES', 'ENV_CONTROLLER_PID', 'ENV_LEDGER', 'ENV_LOCK_HOLDER',
    'ENV_RUN_ID', 'INI_KEY', 'INI_SECTION',
    'EVENT_KINDS', 'controller_pid', 'node_id_for',
    'HaltNeedsAcknowledgement', 'Ledger', 'LedgerError', 'LedgerForeignDatabase', 'LedgerHalted',
    'LedgerLocked', 'LedgerPaused', 'LedgerSchemaTooNew', 'LedgerUnavailable', 'SCHEMA_VERSION',
    'default_holder', 'is_dsn', 'open_ledger', 'redact', 'resolve_ledger_location', 'state_for_mode',
]

# Set by the callback in the controller process before any worker forks, so action plugins know
# which run they belong to and which lock holder is "us".
ENV_RUN_ID = 'ANT_MIGRATION_RUN_ID'
ENV_LOCK_HOLDER = 'ANT_MIGRATION_LOCK_HOLDER'
ENV_CONTROLLER_PID = 'ANT_MIGRATION_CONTROLLER_PID'

# A lock whose holder has not sent a heartbeat for this long is taken over (with a logged event).
DEFAULT_STALE_AFTER = 900

EVENT_KINDS = (
    'gate_verdict', 'alert_fired', 'alert_resolved', 'halt', 'halt_ack', 'pause', 'resume',
    'rollback', 'canary_verdict', 'lock_acquired', 'lock_released', 'lock_recovered',
    'lock_override', 'node_failed', 'reconcile', 'run_started', 'run_ended', 'schema_migrated',
)

_SECRET_KEY = re.compile(r'pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|dsn|auth|vault',
                         re.IGNORECASE)
_URL_PASSWORD = re.compile(r'(://[^:/@\s]+:)[^@\s]*@')
REDACTED = '********'


# --------------------------------------------------------------------------------------------
# Opening


def open_ledger(location=None, clock=None):
    """Open (creating or migrating forward if needed) the ledger at ``location``.

    ``location`` defaults to resolve_ledger_location(). Raises a LedgerError subclass with a clear
    message for an unreachable ledger, a foreign file or a schema from the future.
    """
    location = location or resolve_ledger_location()
    if is_dsn(location):
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils._ledger_postgres import (  # noqa: I001
            PostgresBackend,  # pylint: disable=import-outside-toplevel
        )
        backend = PostgresBackend(location)
    else:
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils._ledger_sqlite import (
            SQLiteBackend,  # pylint: disable=import-outside-toplevel
        )
        backend = SQLiteBackend(location)
    try:
        return Ledger(backend, clock=clock)
    except BaseException:
        backend.close()
        raise


# --------------------------------------------------------------------------------------------
# Helpers


def redact(value):
    """A copy of ``value`` with secrets replaced: keys that look secret, passwords inside URLs."""
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, '') else redact(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r'\1' + REDACTED + '@', value)
    return value


def default_holder(operator=None):
    """``operator@hostname pid N`` — the lock holder string of this process."""
    return f'{operator or _current_user()}@{socket.gethostname()} pid {controller_pid()}'


def _current_user():
    try:
        return getpass.getuser()
    except Exception:  # pylint: disable=broad-except
        return 'unknown'


def _iso(epoch):
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).isoformat(timespec='seconds')


def _json(data):
    return json.dumps(data or {}, sort_keys=True, default=str)


def _unjson(text):
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {'raw': text}


def _run_id(value):
    """Run ids arrive as ints or as strings (ANT_MIGRATION_RUN_ID); store ints."""
    if value in (None, ''):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LedgerError(f'run id must be an integer, got {value!r}') from None


def controller_pid():
    """The pid of the ansible-playbook (or CLI) process this code runs for.

    Action plugins run in worker processes forked per task; the lock must name the controller,
    not the short-lived worker, or it would look dead as soon as the task ends.
    """
    env = os.environ.get(ENV_CONTROLLER_PID)
    if env and env.isdigit():
        return int(env)
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid else os.getpid()


def _marks(values):
    return ', '.join('?' * len(values))


def _where(conditions):
    return ' WHERE ' + ' AND '.join(conditions) if conditions else ''


def node_id_for(host, service_name):
    return f'{host}/{service_name}'


def _pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, TypeError, ValueError):
        return True
    return True


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


def _check_state(state):
    if state not in _modes.STATES:
        raise LedgerError('unknown migration state {!r}; expected one of {}'.format(state, ', '.join(_modes.STATES)))


def _node_row(row):
    out = dict(row)
    out['updated_at'] = _iso(row.get('updated_at'))
    out['health_at'] = _iso(row.get('health_at'))
    out['health_data'] = _unjson(row.get('health_data')) if row.get('health_data') else None
    return out


# --------------------------------------------------------------------------------------------
# The ledger


class Ledger:
    """The migration ledger over one backend (SQLite or PostgreSQL). Use open_ledger()."""

    def __init__(self, backend, clock=None):
        self._db = backend
        self._clock = clock or time.time
        self.location = backend.location
        self.dialect = backend.dialect
        self._migrate()

    # -- lifecycle -----------------------------------------------------------------------

    def close(self):
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f'<Ledger {self.dialect} {self.location}>'

    def _now(self):
        return float(self._clock())

    def _migrate(self):
        """Create the schema or bring it forward; refuse foreign databases and future schemas."""
        self._check_foreign_sqlite()
        with self._db.transaction(write=True) as tx:
            tables = self._db.tables(tx)
            if META_TABLE not in tables:
                if self.dialect == 'sqlite' and tables:
                    names = ', '.join(tables[:8])
                    raise LedgerForeignDatabase(
                        f'{self.location} is a SQLite database but not a migration ledger (it has the tables {names} '
                        f'and no {META_TABLE}); point the ledger option or ANT_MIGRATION_LEDGER at another file')
                if self.dialect == 'postgresql' and 'ledger_nodes' in tables:
                    raise LedgerForeignDatabase(
                        f'the PostgreSQL database {self.location} has a ledger_nodes table but no {META_TABLE}: it is '
                        'not a migration ledger this collection wrote; use another database or schema')
                current = 0
            else:
                meta = {row['key']: row['value'] for row in tx.query('SELECT key, value FROM ledger_meta')}
                if meta.get('application') != APPLICATION:
                    raise LedgerForeignDatabase(
                        f'{self.location} has a {META_TABLE} table that does not belong to a migration ledger '
                        f"(application={meta.get('application')!r})")
                try:
                    current = int(meta.get('schema_version', ''))
                except ValueError:
                    raise LedgerForeignDatabase(
                        f"{self.location} has an unreadable schema version {meta.get('schema_version')!r}") from None
            if current > SCHEMA_VERSION:
                raise LedgerSchemaTooNew(
                    f'the ledger {self.location} has schema version {current}, newer than the {SCHEMA_VERSION} this '
                    'collection understands; it was written by a newer autonomi.network_migration. Upgrade the '
                    'collection on this controller (ansible-galaxy collection install --upgrade '
                    'autonomi.network_migration); nothing was changed')
            now = self._now()
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for stmt in statements(version, self.dialect):
                    tx.execute(stmt)
            if current < SCHEMA_VERSION:
                self._set_meta(tx, 'application', APPLICATION)
                self._set_meta(tx, 'schema_version', str(SCHEMA_VERSION))
                if current == 0:
                    self._set_meta(tx, 'created_at', _iso(now))
                else:
                    self._event(tx, 'schema_migrated', None, {'from': current, 'to': SCHEMA_VERSION})
        if self.dialect == 'sqlite' and self._db.application_id() != SQLITE_APPLICATION_ID:
            self._db.set_application_id(SQLITE_APPLICATION_ID)

    def _check_foreign_sqlite(self):
        if self.dialect != 'sqlite':
            return
        app_id = self._db.application_id()
        if app_id not in (0, SQLITE_APPLICATION_ID):
            raise LedgerForeignDatabase(f'{self.location} is a SQLite database of another application '
                                        f'(application_id {app_id:#x}), not a migration ledger')

    @staticmethod
    def _set_meta(tx, key, value):
        tx.execute('INSERT INTO ledger_meta (key, value) VALUES (?, ?) '
                   'ON CONFLICT (key) DO UPDATE SET value = excluded.value', (key, value))

    def schema_version(self):
        with self._db.transaction(write=False) as tx:
            row = tx.one("SELECT value FROM ledger_meta WHERE key = 'schema_version'")
        return int(row['value'])

    # -- runs ------------------------------------------------------------------------------

    def start_run(self, playbook, operator, extra_vars=None, controller=None, pid=None):
        """Record the start of a run; returns its id. Secrets in extra_vars are redacted."""
        now = self._now()
        with self._db.transaction() as tx:
            run_id = tx.insert(
                'INSERT INTO ledger_runs (playbook, operator, controller, pid, extra_vars, started_at) '
                'VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
                (str(playbook), str(operator), controller or socket.gethostname(),
                 pid if pid is not None else os.getpid(), _json(redact(extra_vars or {})), now))
            self._event(tx, 'run_started', run_id, {'playbook': str(playbook), 'operator': str(operator)}, now)
        return run_id

    def end_run(self, run_id, outcome, summary=None):
        run_id = _run_id(run_id)
        now = self._now()
        with self._db.transaction() as tx:
            tx.execute('UPDATE ledger_runs SET ended_at = ?, outcome = ?, summary = ? WHERE id = ?',
                       (now, str(outcome), _json(summary) if summary is not None else None, run_id))
            self._event(tx, 'run_ended', run_id, {'outcome': str(outcome)}, now)

    def run(self, run_id):
        with self._db.transaction(write=False) as tx:
            row = tx.one('SELECT * FROM ledger_runs WHERE id = ?', (run_id,))
        return self._run_row(row) if row else None

    def runs(self, limit=20):
        with self._db.transaction(write=False) as tx:
            rows = tx.query('SELECT * FROM ledger_runs ORDER BY id DESC LIMIT ?', (int(limit),))
        return [self._run_row(row) for row in rows]

    @staticmethod
    def _run_row(row):
        out = dict(row)
        out['extra_vars'] = _unjson(row['extra_vars'])
        out['summary'] = _unjson(row['summary']) if row.get('summary') else None
        out['started_at'] = _iso(row['started_at'])
        out['ended_at'] = _iso(row['ended_at'])
        return out

    # -- events ----------------------------------------------------------------------------

    def _event(self, tx, kind, run_id, data, at=None):
        run_id = _run_id(run_id)
        return tx.insert('INSERT INTO ledger_events (kind, at, run_id, data) VALUES (?, ?, ?, ?) RETURNING id',
                         (str(kind), at if at is not None else self._now(), run_id, _json(data)))

    def record_event(self, kind, run_id=None, **data):
        """Append an event (gate_verdict, alert_fired, rollback, ...) with JSON data; returns its id."""
        run_id = _run_id(run_id)
        with self._db.transaction() as tx:
            return self._event(tx, kind, run_id, data)

    def events(self, kinds=None, limit=50, run_id=None, since=None):
        """Newest first. ``kinds``: a kind or a list of kinds; ``since``: epoch seconds."""
        run_id = _run_id(run_id)
        where, params = [], []
        if kinds:
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            where.append(f'kind IN ({_marks(kinds)})')
            params += kinds
        if run_id is not None:
            where.append('run_id = ?')
            params.append(run_id)
        if since is not None:
            where.append('at >= ?')
            params.append(float(since))
        sql = f'SELECT * FROM ledger_events{_where(where)} ORDER BY at DESC, id DESC LIMIT ?'
        with self._db.transaction(write=False) as tx:
            rows = tx.query(sql, params + [int(limit)])
        return [{'id': r['id'], 'kind': r['kind'], 'at': _iso(r['at']), 'run_id': r['run_id'],
                 'data': _unjson(r['data'])} for r in rows]

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
        if row is None:
            tx.execute('INSERT INTO ledger_nodes (node_id, host, service_name, peer_id, state, mode, version, wave, '
                       'run_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                       (node_id, host, service, peer_id, to_state, mode, version, wave, run, now))
        else:
            tx.execute('UPDATE ledger_nodes SET peer_id = ?, state = ?, mode = ?, version = ?, wave = ?, run_id = ?, '
                       'updated_at = ? WHERE node_id = ?',
                       (peer_id, to_state, mode, version, wave, run, now, node_id))
        changed = from_state != to_state or from_mode != mode
        if changed:
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
                    tx.execute('INSERT INTO ledger_nodes (node_id, host, service_name, peer_id, state, mode, version, '
                               'run_id, updated_at, health, health_at, health_data) '
                               'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                               (node_id, host, service, item.get('peer_id'), state, mode, item.get('version'),
                                run_id, now, health, now, _json(detail)))
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

    def switch_times(self, limit=1000):
        """Measured seconds-to-ready of the most recent switches, newest first (floats)."""
        with self._db.transaction(write=False) as tx:
            rows = tx.query('SELECT seconds_to_ready FROM ledger_node_history WHERE seconds_to_ready IS NOT NULL '
                            'ORDER BY at DESC, id DESC LIMIT ?', (int(limit),))
        return [float(row['seconds_to_ready']) for row in rows]

    # -- progress --------------------------------------------------------------------------

    def progress(self, window_hours=1.0):
        """Migration progress (_modes.progress) plus velocity over the last ``window_hours`` and ETA.

        Velocity counts nodes that entered iroh_primary / iroh_only from a non-migrated state in the
        window, minus nodes that left those states, per hour. ETA is None when nothing moved in the
        window or nothing is left.
        """
        now = self._now()
        window_hours = float(window_hours)
        since = now - window_hours * 3600.0
        migrated = list(_modes.MIGRATED_STATES)
        dual = list(_modes.DUAL_STACK_STATES)
        with self._db.transaction(write=False) as tx:
            states = [row['state'] for row in tx.query('SELECT state FROM ledger_nodes')]
            rows = tx.query('SELECT from_state, to_state FROM ledger_node_history WHERE at >= ?', (since,))
        result = _modes.progress(states)
        entered = sum(1 for r in rows if r['to_state'] in migrated and r['from_state'] not in migrated)
        left = sum(1 for r in rows if r['from_state'] in migrated and r['to_state'] not in migrated)
        dual_entered = sum(1 for r in rows if r['to_state'] in dual and r['from_state'] not in dual + migrated)
        velocity = max(entered - left, 0) / window_hours if window_hours > 0 else 0.0
        remaining = result['total'] - result['migrated']
        eta = None
        if velocity > 0 and remaining > 0:
            eta = datetime.datetime.fromtimestamp(now + remaining / velocity * 3600.0, tz=datetime.UTC)
        result.update({
            'velocity_nodes_per_hour': round(velocity, 2),
            'dual_stack_velocity_nodes_per_hour': round(dual_entered / window_hours, 2) if window_hours > 0 else 0.0,
            'window_hours': window_hours,
            'remaining': remaining,
            'eta': eta,
        })
        return result

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
        row = tx.one("SELECT MAX(at) AS at FROM ledger_events WHERE kind = 'halt_ack'")
        return row['at'] if row and row['at'] is not None else 0.0

    def failures(self, run_ids=None, since=None):
        """Failed node ids (distinct), by default since the last acknowledged halt."""
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

        Without arguments: since the last acknowledged halt (resume with ack resets the budget).
        """
        return len(self.failures(run_ids=run_ids, since=since))

    # -- flags: pause and halt --------------------------------------------------------------

    def get_flags(self):
        """{'paused': None | {reason, operator, at}, 'halted': None | {reason, operator, at, source}}."""
        with self._db.transaction(write=False) as tx:
            rows = tx.query('SELECT * FROM ledger_flags')
        flags = {'paused': None, 'halted': None}
        for row in rows:
            entry = {'reason': row['reason'], 'operator': row['operator'], 'at': _iso(row['at'])}
            if row['name'] == 'halt':
                entry['source'] = row['source']
                flags['halted'] = entry
            elif row['name'] == 'pause':
                flags['paused'] = entry
        return flags

    def set_pause(self, reason, operator, run_id=None):
        run_id = _run_id(run_id)
        now = self._now()
        with self._db.transaction() as tx:
            tx.execute('INSERT INTO ledger_flags (name, reason, operator, source, at, run_id) '
                       "VALUES ('pause', ?, ?, NULL, ?, ?) ON CONFLICT (name) DO UPDATE SET reason = excluded.reason, "
                       'operator = excluded.operator, at = excluded.at, run_id = excluded.run_id',
                       (str(reason), str(operator), now, run_id))
            self._event(tx, 'pause', run_id, {'reason': reason, 'operator': operator}, now)
        return self.get_flags()['paused']

    def set_halt(self, reason, operator, source, run_id=None, **data):
        """Halt the migration. An existing halt keeps its first reason (the cause); the new one is logged."""
        run_id = _run_id(run_id)
        now = self._now()
        with self._db.transaction() as tx:
            existing = tx.one("SELECT * FROM ledger_flags WHERE name = 'halt'")
            if existing is None:
                tx.execute("INSERT INTO ledger_flags (name, reason, operator, source, at, run_id) "
                           "VALUES ('halt', ?, ?, ?, ?, ?)", (str(reason), str(operator), str(source), now, run_id))
            self._event(tx, 'halt', run_id, dict(data, reason=reason, operator=operator, source=source,
                                                 already_halted=existing is not None), now)
        return self.get_flags()['halted']

    def resume(self, operator, ack=False, reason=None, run_id=None):
        """Clear the pause; clear a halt only with ``ack=True``. Returns {'cleared': [...]}.

        Raises HaltNeedsAcknowledgement (a LedgerError) when halted and ack is not given; nothing
        is cleared then, not even the pause.
        """
        run_id = _run_id(run_id)
        now = self._now()
        with self._db.transaction() as tx:
            rows = {row['name']: row for row in tx.query('SELECT * FROM ledger_flags')}
            halt = rows.get('halt')
            if halt is not None and not ack:
                raise HaltNeedsAcknowledgement(
                    f"the migration is halted ({halt['reason']}, by {halt['operator']} via {halt['source']} at "
                    f"{_iso(halt['at'])}); a halt needs an explicit acknowledgement once its cause is understood: "
                    'resume with ack (CLI: resume --ack; playbook: -e ack=true)')
            cleared = sorted(rows)
            if cleared:
                tx.execute('DELETE FROM ledger_flags')
            if halt is not None:
                self._event(tx, 'halt_ack', run_id, {'operator': operator, 'reason': reason,
                                                     'halt_reason': halt['reason'], 'halt_source': halt['source']}, now)
            if cleared:
                self._event(tx, 'resume', run_id, {'operator': operator, 'reason': reason, 'ack': bool(ack),
                                                   'cleared': cleared}, now)
        return {'cleared': ['halted' if name == 'halt' else 'paused' for name in cleared]}

    def assert_can_proceed(self, holder=None):
        """Raise LedgerHalted / LedgerPaused / LedgerLocked if a node must not be touched now.

        For action plugins, before a host is touched. ``holder`` defaults to the
        ANT_MIGRATION_LOCK_HOLDER the callback exported; a lock held by anyone else refuses.
        """
        flags = self.get_flags()
        if flags['halted']:
            h = flags['halted']
            raise LedgerHalted(f"the migration is halted since {h['at']} by {h['operator']} ({h['source']}): "
                               f"{h['reason']}; acknowledge with resume --ack once the cause is understood")
        if flags['paused']:
            p = flags['paused']
            raise LedgerPaused(f"the migration is paused since {p['at']} by {p['operator']}: {p['reason']}; "
                               'resume it to continue')
        holder = holder if holder is not None else os.environ.get(ENV_LOCK_HOLDER)
        with self._db.transaction(write=False) as tx:
            lock = self._lock_row(tx.one('SELECT * FROM ledger_lock WHERE id = 1'))
        if lock and lock['holder'] != holder:
            raise LedgerLocked(self._locked_message(lock), holder=lock['holder'], started_at=lock['started_at'],
                               playbook=lock['playbook'], run_id=lock['run_id'])
        return flags

    # -- the run lock -----------------------------------------------------------------------

    @staticmethod
    def _lock_row(row):
        if not row or not row.get('holder'):
            return None
        return {'holder': row['holder'], 'host': row['holder_host'], 'pid': row['holder_pid'],
                'playbook': row['playbook'], 'run_id': row['run_id'], 'started_at': _iso(row['started_at']),
                'heartbeat_at': _iso(row['heartbeat_at']), '_heartbeat': row['heartbeat_at']}

    def _locked_message(self, lock):
        age = self._now() - (lock['_heartbeat'] or 0)
        return (f"the migration ledger is locked by {lock['holder']} since {lock['started_at']} (playbook "
                f"{lock['playbook']}, run {lock['run_id']}, last heartbeat {age:.0f} s ago): another rollout or "
                'rollback is running. If that process is gone, the lock is taken over after its stale timeout, '
                'or release it explicitly with force_unlock (CLI: unlock --reason ...)')

    @staticmethod
    def _public(lock):
        return {k: v for k, v in lock.items() if not k.startswith('_')} if lock else None

    def lock(self):
        """The current lock ({holder, host, pid, playbook, run_id, started_at, heartbeat_at}) or None."""
        with self._db.transaction(write=False) as tx:
            return self._public(self._lock_row(tx.one('SELECT * FROM ledger_lock WHERE id = 1')))

    def acquire_lock(self, holder, playbook, stale_after=DEFAULT_STALE_AFTER, run_id=None):
        """Take the run lock or raise LedgerLocked naming the holder, its start time and playbook.

        Re-entrant for the same holder. A lock is taken over, with a ``lock_recovered`` event, when
        its heartbeat is older than ``stale_after`` seconds or its holder process on this very host
        is gone.
        """
        now = self._now()
        host, pid = socket.gethostname(), controller_pid()
        run_id = _run_id(run_id)
        with self._db.transaction() as tx:
            lock = self._lock_row(tx.one('SELECT * FROM ledger_lock WHERE id = 1'))
            if lock and lock['holder'] != holder:
                age = now - (lock['_heartbeat'] or 0)
                dead = lock['host'] == host and lock['pid'] is not None and not _pid_alive(lock['pid'])
                if age <= stale_after and not dead:
                    raise LedgerLocked(self._locked_message(lock), holder=lock['holder'],
                                       started_at=lock['started_at'], playbook=lock['playbook'],
                                       run_id=lock['run_id'])
                why = (f"its process {lock['pid']} on {host} is gone" if dead
                       else f'no heartbeat for {age:.0f} s (stale after {stale_after} s)')
                self._event(tx, 'lock_recovered', run_id,
                            {'previous_holder': lock['holder'], 'previous_playbook': lock['playbook'],
                             'previous_run_id': lock['run_id'], 'previous_started_at': lock['started_at'],
                             'reason': why, 'new_holder': holder}, now)
                lock = None
            if lock is None:
                tx.execute('UPDATE ledger_lock SET holder = ?, holder_host = ?, holder_pid = ?, playbook = ?, '
                           'run_id = ?, started_at = ?, heartbeat_at = ? WHERE id = 1',
                           (holder, host, pid, str(playbook), run_id, now, now))
                self._event(tx, 'lock_acquired', run_id, {'holder': holder, 'playbook': str(playbook)}, now)
            else:
                tx.execute('UPDATE ledger_lock SET heartbeat_at = ?, run_id = COALESCE(?, run_id) WHERE id = 1',
                           (now, run_id))
            return self._public(self._lock_row(tx.one('SELECT * FROM ledger_lock WHERE id = 1')))

    def heartbeat(self, holder=None, pid=None):
        """Refresh the lock's heartbeat; False when it is not held by ``holder`` (any more).

        Without ``holder``: the lock taken on this host for the controller process ``pid``
        (default: this controller), whatever its holder string — the callback keeps the lock of
        its playbook alive this way even when a role took it.
        """
        with self._db.transaction() as tx:
            if holder is not None:
                return tx.execute('UPDATE ledger_lock SET heartbeat_at = ? WHERE id = 1 AND holder = ?',
                                  (self._now(), holder)) == 1
            return tx.execute('UPDATE ledger_lock SET heartbeat_at = ? WHERE id = 1 AND holder IS NOT NULL '
                              'AND holder_host = ? AND holder_pid = ?',
                              (self._now(), socket.gethostname(), pid or controller_pid())) == 1

    def release_controller_lock(self, pid=None, run_id=None, reason='run ended'):
        """Release the lock if it was taken on this host for controller process ``pid``; returns the lock."""
        run_id = _run_id(run_id)
        with self._db.transaction() as tx:
            lock = self._lock_row(tx.one('SELECT * FROM ledger_lock WHERE id = 1'))
            if not lock or lock['host'] != socket.gethostname() or lock['pid'] != (pid or controller_pid()):
                return None
            tx.execute('UPDATE ledger_lock SET holder = NULL, holder_host = NULL, holder_pid = NULL, '
                       'playbook = NULL, run_id = NULL, started_at = NULL, heartbeat_at = NULL WHERE id = 1')
            self._event(tx, 'lock_released', run_id, {'holder': lock['holder'], 'reason': reason})
        return self._public(lock)

    def release_lock(self, holder, run_id=None):
        """Release the lock if ``holder`` holds it; returns whether it did."""
        run_id = _run_id(run_id)
        with self._db.transaction() as tx:
            done = tx.execute('UPDATE ledger_lock SET holder = NULL, holder_host = NULL, holder_pid = NULL, '
                              'playbook = NULL, run_id = NULL, started_at = NULL, heartbeat_at = NULL '
                              'WHERE id = 1 AND holder = ?', (holder,)) == 1
            if done:
                self._event(tx, 'lock_released', run_id, {'holder': holder})
        return done

    def force_unlock(self, operator, reason):
        """Explicit override: release whoever holds the lock, logged with operator and reason."""
        if not reason:
            raise LedgerError('force_unlock needs a reason (why is the holder known to be gone?)')
        with self._db.transaction() as tx:
            lock = self._lock_row(tx.one('SELECT * FROM ledger_lock WHERE id = 1'))
            tx.execute('UPDATE ledger_lock SET holder = NULL, holder_host = NULL, holder_pid = NULL, playbook = NULL, '
                       'run_id = NULL, started_at = NULL, heartbeat_at = NULL WHERE id = 1')
            self._event(tx, 'lock_override', None, {
                'operator': operator, 'reason': reason,
                'previous_holder': lock['holder'] if lock else None,
                'previous_playbook': lock['playbook'] if lock else None,
                'previous_run_id': lock['run_id'] if lock else None,
                'previous_started_at': lock['started_at'] if lock else None})
        return self._public(lock)

    # -- canary ---------------------------------------------------------------------------

    def set_canary_verdict(self, verdict, run_id=None, **data):
        """Store the canary verdict (e.g. passed / failed / inconclusive) with its evidence; also an event.

        canary_verdict() returns {verdict, at, run_id, data} with data's keys also at the top level.
        """
        now = self._now()
        run_id = _run_id(run_id)
        with self._db.transaction() as tx:
            tx.execute('INSERT INTO ledger_canary (id, verdict, at, run_id, data) VALUES (1, ?, ?, ?, ?) '
                       'ON CONFLICT (id) DO UPDATE SET verdict = excluded.verdict, at = excluded.at, '
                       'run_id = excluded.run_id, data = excluded.data', (str(verdict), now, run_id, _json(data)))
            self._event(tx, 'canary_verdict', run_id, dict(data, verdict=verdict), now)

    def canary_verdict(self):
        """The latest canary verdict {verdict, at, run_id, data} or None."""
        with self._db.transaction(write=False) as tx:
            row = tx.one('SELECT * FROM ledger_canary WHERE id = 1')
        if not row:
            return None
        data = _unjson(row['data'])
        out = dict(data)
        out.update(verdict=row['verdict'], at=_iso(row['at']), run_id=row['run_id'], data=data)
        return out

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

    # -- metrics export ---------------------------------------------------------------------

    def metrics_text(self, window_hours=1.0):
        """The migration's own metrics in the Prometheus text exposition format (see _ledger_metrics)."""
        return render_metrics(self.progress(window_hours=window_hours), self.get_flags(), self._now())

    def write_textfile(self, path, window_hours=1.0):
        """Write metrics_text() to ``path`` atomically (temp file in the same directory + rename)."""
        return write_atomically(path, self.metrics_text(window_hours=window_hours))
