# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The live migration dashboard: an ASGI service (Starlette under uvicorn) that reads the same
ledger and Prometheus as the playbooks and serves /, /status, /ws, /metrics and /health.
See docs/dashboard.md.

It reads through the collection's code, found by Ansible's collection loader
(ant_network_migration_common.collection; CollectionNotFound says how to install it), and through
ant_network_migration_common; it never imports the CLI (the CLI's ``dashboard`` command starts it).
"""

from ant_network_migration_common import collection

collection.install()
