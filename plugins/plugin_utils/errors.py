# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one root of the controller side's errors.

Every error the collection raises on purpose on the controller (bad input, a plan that cannot be
made, the alert rules, Prometheus, the ledger, the gate's configuration) is a MigrationError, so an
adapter (an action plugin, the CLI, the dashboard, the EDA source) turns all of them into its own
failure form in one ``except`` and lets anything else surface as the bug it is. The node side
(plugins/module_utils/_errors.py) has its own root, NodeError: it ships to the hosts.
"""

from __future__ import annotations


class MigrationError(Exception):
    """Root of the collection's controller-side errors; the message says what, where and what to do."""
