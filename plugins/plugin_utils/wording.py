# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a message names a list: every list cut short says how many it left out."""

from __future__ import annotations


def shown(items, limit=10):
    """``a, b, c`` or, cut at ``limit``, ``a, b, c (and 18 more)``."""
    items = [str(item) for item in items]
    text = ', '.join(items[:limit])
    return text + (' (and %d more)' % (len(items) - limit) if len(items) > limit else '')
