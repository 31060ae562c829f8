# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Attribute descriptions shared by the collection's modules; each module states its support.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and report whether it would change anything, without changing it.
  diff_mode:
    description: Returns what it changed (or would change in check mode) as a before/after diff.
"""

    IDEMPOTENT = r"""
options: {}
attributes:
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change
        (and, for read-only modules, no run changes anything).
"""

    ACTION = r"""
options: {}
attributes:
  action:
    description: A controller-side action plugin of the same name runs first and hands over to the module.
"""
