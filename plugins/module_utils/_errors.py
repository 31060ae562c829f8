# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The errors of the node-side code (antctl, node metrics, node selection).

Modules catch ``NodeError`` at their edge and turn it into ``fail_json``; nothing
below the module raises anything else on purpose. ``_modes.TransitionError`` is the
one other domain error a module translates.
"""

from __future__ import annotations


class NodeError(Exception):
    """Base class of every error the node-side code raises on purpose."""


class CommandError(NodeError):
    """A host command (antctl, systemctl) could not be run or failed; carries its output."""

    def __init__(self, message, cmd=None, rc=None, stdout=None, stderr=None):
        super().__init__(message)
        self.cmd = list(cmd) if cmd else []
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def details(self):
        """The command, exit code and output, for a module's failure result."""
        return {'cmd': self.cmd, 'rc': self.rc, 'stdout': self.stdout, 'stderr': self.stderr}


class AntctlError(CommandError):
    """antctl could not be run, failed, or printed something we cannot read."""


class SystemdError(CommandError):
    """A drop-in could not be read or written, or systemctl failed."""


class AntctlNotFound(AntctlError):
    """The antctl executable does not exist or is not executable."""


class AntctlTimeout(AntctlError):
    """An antctl command did not finish in time."""


class AntctlOutputError(AntctlError):
    """antctl succeeded but its output is not the JSON the node interface promises."""


class MetricsError(NodeError):
    """A node's metrics endpoint could not be read or parsed."""

    def __init__(self, message, url=None):
        super().__init__(message)
        self.url = url


class MetricsUnreachable(MetricsError):
    """The metrics endpoint refused, timed out or answered with an HTTP error."""


class MetricsParseError(MetricsError):
    """The endpoint answered with text that is not the Prometheus text format."""


class NodeSelectionError(NodeError):
    """A requested service name or peer id matches no node of the host."""
