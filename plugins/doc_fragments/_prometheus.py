# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Connection options of the controller-side plugins that query Prometheus
    # (plugin_utils/prometheus.py reads the same environment variables).
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Prometheus base URL.
      - Defaults to E(MIGRATION_PROMETHEUS_URL), then the inventory variable C(migration_prometheus_url).
    type: str
  validate_certs:
    description: Verify the server's TLS certificate. Defaults to E(MIGRATION_PROMETHEUS_VALIDATE_CERTS), else V(true).
    type: bool
  ca_path:
    description: CA bundle to verify the server with. Defaults to E(MIGRATION_PROMETHEUS_CA_PATH).
    type: path
  username:
    description: Basic auth user. Defaults to E(MIGRATION_PROMETHEUS_USERNAME).
    type: str
  password:
    description: Basic auth password. Defaults to E(MIGRATION_PROMETHEUS_PASSWORD). Never logged.
    type: str
  token:
    description: Bearer token (instead of basic auth). Defaults to E(MIGRATION_PROMETHEUS_TOKEN). Never logged.
    type: str
  timeout:
    description: Seconds per HTTP request. Defaults to E(MIGRATION_PROMETHEUS_TIMEOUT), else 10.
    type: float
  retries:
    description:
      - Retries per query on connection errors and HTTP 429/5xx.
      - Defaults to E(MIGRATION_PROMETHEUS_RETRIES), else 3.
    type: int
"""
