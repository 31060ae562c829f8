# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Use cases of the transport switch on the controller: may this run touch this host now, the write-ahead
intent before it is touched, and the record of what the switch did (also by a worker whose controller died).

The decision is the guard's (plugins/plugin_utils/guard.py); may_touch() reads the ledger for it and
handles the ledger's absence: the ledger code not installed (ImportError) allows, with a note; anything
else going wrong while reading the ledger refuses (fail closed). The transport_mode action plugin asks
it before a host is touched and between node batches (plugins/plugin_utils/node_batches.py).
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard, redaction

MODULE = 'autonomi.network_migration.transport_mode'


class LedgerGuard:
    """The guard's verdict on touching a host: ``allowed`` or ``reason`` why not (``refused``: its kind)."""

    def __init__(self, allowed, reason=None, flags=None, location=None, note=None, refused=None):
        self.allowed = allowed
        self.reason = reason
        self.flags = flags or {}
        self.location = location
        self.note = note
        self.refused = refused or (guard.ALLOWED if allowed else 'ledger')


def _read_ledger(explicit_location, with_modes=False):
    """(location, flags, node modes or None, lock) from the ledger. ImportError when the ledger code is absent.

    The node modes ({host/service: mode}) are read only when asked: for a move to iroh_only.
    """
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger import (  # noqa: I001
        open_ledger,
        resolve_ledger_location,
    )
    location = resolve_ledger_location(explicit_location)
    ledger = open_ledger(location)
    try:
        snap = guard.snapshot_of(ledger, with_modes=with_modes)
        return location, snap.flags, snap.node_modes, snap.lock, snap.intents
    finally:
        close = getattr(ledger, 'close', None)
        if close is not None:
            close()


def may_touch(explicit_location=None, ignore_pause=False, allow_rollback=False, mode=None, host=None,
              read_ledger=_read_ledger, actor=None):
    """Ask the guard whether the host may be touched; returns a LedgerGuard.

    The decision is guard.decide()'s; this adapter reads the ledger and handles its absence:
    the ledger code is not installed (ImportError): allowed, with a note; anything else going
    wrong while reading the ledger: refused (fail closed).
    """
    try:
        location, flags, fleet_modes, *rest = read_ledger(explicit_location, with_modes=mode == _modes.IROH_ONLY)
    except ImportError as exc:
        return LedgerGuard(True, note=f'no migration ledger available ({exc}); pause/halt not checked')
    except Exception as exc:  # pylint: disable=broad-exception-caught  # fail closed on any ledger error
        return LedgerGuard(False, reason=(
            f'cannot read the migration ledger ({exc.__class__.__name__}: {exc}); refusing to touch the host '
            'because a pause or halt could not be ruled out. Fix the ledger (or pass ledger=<location>) and re-run.'))
    snapshot = guard.Snapshot(flags=flags or {}, lock=rest[0] if rest else None, node_modes=fleet_modes,
                              intents=rest[1] if len(rest) > 1 else [])
    decision = guard.decide(snapshot, actor or guard.Actor.from_environment(), host=host, mode=mode,
                            ignore_pause=ignore_pause, allow_rollback=allow_rollback)
    return LedgerGuard(decision.allowed, reason=decision.reason, flags=snapshot.flags, location=location,
                       note=decision.note, refused=decision.refused)


def _open(location):
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils import (  # noqa: I001
        ledger as ledger_lib,  # pylint: disable=import-outside-toplevel
    )
    return ledger_lib.open_ledger(ledger_lib.resolve_ledger_location(location))


def begin(location, host, mode, actor=None):
    """Write-ahead: record that ``host`` is about to be switched to ``mode``. None when recorded, else why
    nothing may be switched (the ledger could not be written: the batch stops with nothing touched)."""
    actor = actor or guard.Actor.from_environment()
    try:
        with _open(location) as ledger:
            ledger.open_intent(host, mode, run_id=actor.run_id, holder=actor.in_flight_holder())
    except Exception as exc:  # pylint: disable=broad-exception-caught  # any failure: touch nothing
        return (f'nothing was switched on {host}: the intent to switch it to {mode} could not be recorded in the '
                f'migration ledger ({redaction.redact_text(exc)}). Fix the ledger, then re-run.')
    return None


def finish(location, host, result, intent=None, wave=None, orphaned=False, actor=None, purpose=None):
    """Record what the switch did on ``host`` (every node's configured mode and readiness) and end its intent,
    in one transaction. Returns (changed transitions, None) or (0, what could not be recorded and what next)."""
    from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import (  # noqa: I001
        transition_items,  # pylint: disable=import-outside-toplevel
    )
    actor = actor or guard.Actor.from_environment()
    items = transition_items(host, result, intent, wave=wave, purpose=purpose)
    if orphaned:
        for item in items:
            item['reason'] = f"{item['reason']} (recorded by the worker: its controller was gone)"
    try:
        with _open(location) as ledger:
            done = ledger.close_intent(host, items, run_id=actor.run_id)
            if orphaned:
                ledger.record_event('orphan_stopped', run_id=actor.run_id, host=host,
                                    switched=result.get('switched') or [],
                                    not_switched=result.get('not_switched') or [], controller_pid=actor.controller_pid)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        return 0, (f'but the result could NOT be recorded in the migration ledger ({redaction.redact_text(exc)}): the '
                   f'ledger does not know what {host} runs now. The batch stops; the next run refuses until the ledger '
                   'is compared with the hosts (playbooks/reconcile.yml -e fix=true) and the stop is acknowledged '
                   '(resume with ack)')
    return sum(1 for d in done if d['changed']), None
