"""The antctl client: recorded `antctl status --json` output, node selection, the command lines it runs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.autonomi.network_migration.plugins.module_utils import _antctl
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import (
    AntctlError,
    AntctlNotFound,
    AntctlOutputError,
    AntctlTimeout,
    NodeSelectionError,
)

FIXTURES = Path(__file__).resolve().parents[3] / 'unit' / 'fixtures'
FAKE = FIXTURES / 'bin' / 'fake_antctl.py'


def recorded(name):
    return (FIXTURES / 'antctl' / name).read_text()


# -- parsing -----------------------------------------------------------------------------


def test_status_registry_form():
    nodes = _antctl.parse_status(recorded('status_mixed.json'))
    assert [n['service_name'] for n in nodes] == ['antnode1', 'antnode2', 'antnode3', 'antnode4', 'antnode5']
    first = nodes[0]
    assert first['status'] == 'Running'
    assert first['peer_id'].startswith('12D3KooW')
    assert first['metrics_port'] == 14001
    assert first['connected_peers'] == 6
    assert len(first['connected_peer_ids']) == 6
    assert first['configured_mode'] == 'libp2p_only'
    assert nodes[2]['configured_mode'] == 'dual_stack'
    stopped = nodes[3]
    assert stopped['status'] == 'Stopped'
    assert stopped['connected_peers'] is None and stopped['connected_peer_ids'] is None
    assert nodes[4]['configured_mode'] is None  # no environment recorded


def test_status_count_form_and_daemon():
    nodes = _antctl.parse_status(recorded('status_counts.json'))
    assert [n['connected_peers'] for n in nodes] == [8, 9, 10]
    assert all(n['connected_peer_ids'] is None for n in nodes)
    assert all(n['configured_mode'] is None for n in nodes)


def test_status_count_fallback_field():
    doc = {'nodes': [{'service_name': 'antnode1', 'status': 'Running', 'connected_peers': None,
                      'connected_peers_count': 4}]}
    assert _antctl.parse_status(json.dumps(doc))[0]['connected_peers'] == 4


def test_status_empty():
    assert _antctl.parse_status(recorded('status_empty.json')) == []


@pytest.mark.parametrize('text,match', [
    ('Node registry is empty', 'did not print JSON'),
    ('[]', 'expected an object with a "nodes" list'),
    ('{"daemon": null}', 'expected an object'),
    (None, 'lacks service_name, status'),
])
def test_status_errors(text, match):
    text = recorded('status_missing_field.json') if text is None else text
    with pytest.raises(AntctlOutputError, match=match):
        _antctl.parse_status(text)


# -- selection ---------------------------------------------------------------------------


def nodes():
    return _antctl.parse_status(recorded('status_mixed.json'))


def test_select_all_skips_removed():
    assert [n['service_name'] for n in _antctl.select_nodes(nodes())] == [
        'antnode1', 'antnode2', 'antnode3', 'antnode4']


def test_select_by_name_and_peer_id_keeps_registry_order():
    peer3 = nodes()[2]['peer_id']
    chosen = _antctl.select_nodes(nodes(), [peer3, 'antnode1'])
    assert [n['service_name'] for n in chosen] == ['antnode1', 'antnode3']


def test_select_unknown_names_it():
    with pytest.raises(NodeSelectionError, match=r'antnode9, 12D3KooWnope .*nodes: antnode1, antnode2'):
        _antctl.select_nodes(nodes(), ['antnode1', 'antnode9', '12D3KooWnope'])


def test_select_removed_node_is_unknown():
    with pytest.raises(NodeSelectionError, match='antnode5'):
        _antctl.select_nodes(nodes(), ['antnode5'])


# -- running antctl ----------------------------------------------------------------------


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """An executable antctl stand-in; returns (path, log reader)."""
    script = tmp_path / 'antctl'
    script.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    script.chmod(0o755)
    log = tmp_path / 'calls.jsonl'
    monkeypatch.setenv('FAKE_ANTCTL_LOG', str(log))
    monkeypatch.setenv('FAKE_ANTCTL_STATUS', str(FIXTURES / 'antctl' / 'status_mixed.json'))
    monkeypatch.delenv('FAKE_ANTCTL_BEHAVIOUR', raising=False)

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return str(script), calls


def test_status_through_the_command(fake):
    path, calls = fake
    assert len(_antctl.Antctl(path).status()) == 5
    assert calls()[0]['argv'] == ['status', '--json']


def test_set_transport_mode_command_line(fake):
    path, calls = fake
    _antctl.Antctl(path).set_transport_mode(['antnode1', 'antnode3'], '0.4.6', 'dual_stack', 2000)
    assert calls()[0]['argv'] == [
        'upgrade', '--force', '--version', '0.4.6', '--env', 'ANT_TRANSPORT_MODE=dual_stack',
        '--service-name', 'antnode1', '--service-name', 'antnode3', '--interval', '2000']


def test_upgrade_with_nothing_to_do_runs_nothing(fake):
    path, calls = fake
    assert _antctl.Antctl(path).set_transport_mode([], '0.4.6', 'dual_stack', 2000) == ''
    assert calls() == []


def test_start_stop_command_lines(fake):
    path, calls = fake
    client = _antctl.Antctl(path)
    client.start(['antnode2'], interval_ms=500)
    client.stop(['antnode2'])
    assert [c['argv'] for c in calls()] == [
        ['start', '--service-name', 'antnode2', '--interval', '500'],
        ['stop', '--service-name', 'antnode2']]


def test_environment_is_passed(fake):
    path, calls = fake
    _antctl.Antctl(path, env={'ANTCTL_REGISTRY': '/srv/reg.json'}).status()
    assert calls()[0]['env'] == {'ANTCTL_REGISTRY': '/srv/reg.json'}


def test_failure_reports_exit_code_and_last_error_line(fake, monkeypatch):
    path, _calls = fake
    monkeypatch.setenv('FAKE_ANTCTL_BEHAVIOUR', 'fail')
    with pytest.raises(AntctlError, match='failed with exit code 1: 1: permission denied') as info:
        _antctl.Antctl(path).status()
    assert info.value.rc == 1
    assert 'Could not connect' in info.value.stderr
    assert info.value.details()['cmd'] == [path, 'status', '--json']


def test_garbage_output(fake, monkeypatch):
    path, _calls = fake
    monkeypatch.setenv('FAKE_ANTCTL_BEHAVIOUR', 'garbage')
    with pytest.raises(AntctlOutputError, match='did not print JSON'):
        _antctl.Antctl(path).status()


def test_timeout_kills_the_command(fake, monkeypatch):
    path, _calls = fake
    monkeypatch.setenv('FAKE_ANTCTL_BEHAVIOUR', 'hang')
    started = time.monotonic()
    with pytest.raises(AntctlTimeout, match='did not finish within 0.5 s'):
        _antctl.Antctl(path, timeout=0.5).status()
    assert time.monotonic() - started < 5


def test_missing_executable(tmp_path):
    with pytest.raises(AntctlNotFound, match='set antctl_path'):
        _antctl.Antctl(str(tmp_path / 'nope')).status()


def test_not_executable(tmp_path):
    plain = tmp_path / 'antctl'
    plain.write_text('')
    with pytest.raises(AntctlNotFound):
        _antctl.Antctl(str(plain)).status()


def test_set_transport_mode_needs_the_version(fake):
    path, calls = fake
    with pytest.raises(AntctlError, match='without the running version'):
        _antctl.Antctl(path).set_transport_mode(['antnode1'], None, 'dual_stack', 2000)
    assert calls() == []


def test_do_not_start_command_line(fake):
    path, calls = fake
    _antctl.Antctl(path).set_transport_mode(['antnode4'], '0.4.6', 'libp2p_only', 0, start=False)
    assert calls()[0]['argv'] == [
        'upgrade', '--force', '--version', '0.4.6', '--env', 'ANT_TRANSPORT_MODE=libp2p_only', '--do-not-start',
        '--service-name', 'antnode4', '--interval', '0']
