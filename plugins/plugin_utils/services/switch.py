# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Use cases of the transport switch on the controller: may this run touch this host now, and what a
worker whose controller died records of the switch it finished.

The decision is the guard's (plugins/plugin_utils/guard.py); may_touch() reads the ledger for it and
handles the ledger's absence: the ledger code not installed (ImportError) allows, with a note; anything
else going wrong while reading the ledger refuses (fail closed). The transport_mode action plugin asks
it before a host is touched and between node batches (plugins/plugin_utils/node_batches.py).
"""

from __future__ import annotations

import os

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard

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
        return location, snap.flags, snap.node_modes, snap.lock
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
    snapshot = guard.Snapshot(flags=flags or {}, lock=rest[0] if rest else None, node_modes=fleet_modes)
    decision = guard.decide(snapshot, actor or guard.Actor.from_environment(), host=host, mode=mode,
                            ignore_pause=ignore_pause, allow_rollback=allow_rollback)
    return LedgerGuard(decision.allowed, reason=decision.reason, flags=snapshot.flags, location=location,
                       note=decision.note, refused=decision.refused)


def record_orphaned(location, host, result, warn=print):
    """A worker whose controller died records what it switched: nobody else will."""
    try:
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils import (  # noqa: I001
            ledger as ledger_lib,  # pylint: disable=import-outside-toplevel
        )
        from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import (
            transition_items,  # pylint: disable=import-outside-toplevel
        )
        ledger = ledger_lib.open_ledger(ledger_lib.resolve_ledger_location(location))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        warn(f'{MODULE}: controller gone and the ledger cannot be opened to record {host}: {exc}')
        return
    try:
        items = transition_items(host, result)
        for item in items:
            item['reason'] = f"{item['reason']} (recorded by the worker: its controller was gone)"
        run_id = os.environ.get(ledger_lib.ENV_RUN_ID)
        ledger.record_transitions(items, run_id=run_id)
        ledger.record_event('orphan_stopped', run_id=run_id, host=host, switched=result.get('switched') or [],
                            not_switched=result.get('not_switched') or [],
                            controller_pid=guard.Actor.from_environment().controller_pid)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        warn(f'{MODULE}: controller gone; could not record {host} in the ledger: {exc}')
    finally:
        ledger.close()
