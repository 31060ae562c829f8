# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the Alertmanager client sends: an alert, its resolve, a silence."""

from __future__ import annotations

import datetime

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alertmanager as am


def sent(call):
    client, calls = am.Alertmanager('http://am:9093'), []
    client._call = lambda path, body=None: calls.append((path, body)) or '{"silenceID": "s-1"}'
    result = call(client)
    return result, calls


def at(text):
    return datetime.datetime.fromisoformat(text)


def test_a_resolve_arrives_already_ended_so_alertmanager_does_not_keep_the_first_end():
    """Alertmanager keeps the held alert's later end unless the newer one is resolved when it arrives
    (types.Alert.Merge): an end of "now" plus a millisecond left a resolved test alert active for 5 minutes."""
    before = datetime.datetime.now(datetime.UTC)
    _result, [(path, [alert])] = sent(lambda c: c.post_alert({'alertname': 'X'}, {}, ends_in=0))
    assert path == '/api/v2/alerts'
    assert at(alert['endsAt']) <= before - datetime.timedelta(seconds=am.RESOLVE_SKEW - 1)
    assert at(alert['startsAt']) <= at(alert['endsAt'])     # Alertmanager refuses an end before the start
    _result, [(_path, [firing])] = sent(lambda c: c.post_alert({'alertname': 'X'}, {}, ends_in=300))
    assert 299 <= (at(firing['endsAt']) - before).total_seconds() <= 310
    assert at(firing['startsAt']) >= before


def test_a_silence_matches_exactly_the_labels_given():
    silence_id, [(path, body)] = sent(lambda c: c.silence({'alertname': 'T', 'preflight': 'abc'}, 3600, 'why'))
    assert silence_id == 's-1' and path == '/api/v2/silences'
    assert body['matchers'] == [{'name': 'alertname', 'value': 'T', 'isRegex': False, 'isEqual': True},
                                {'name': 'preflight', 'value': 'abc', 'isRegex': False, 'isEqual': True}]
    assert (at(body['endsAt']) - at(body['startsAt'])).total_seconds() == 3600
    assert body['comment'] == 'why' and body['createdBy'] == 'ant-network-migration'
