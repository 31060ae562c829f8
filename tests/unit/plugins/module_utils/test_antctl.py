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
    # antctl keeps no per-node environment: the mode of a service is its drop-in's, not antctl's
    assert all(n['configured_mode'] is None for n in nodes)
    stopped = nodes[3]
    assert stopped['status'] == 'Stopped'
    assert stopped['connected_peers'] is None and stopped['connected_peer_ids'] is None


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


def test_environment_is_passed(fake):
    path, calls = fake
    _antctl.Antctl(path, env={'ANTCTL_REGISTRY': '/srv/reg.json'}).status()
    assert calls()[0]['env'] == {'ANTCTL_REGISTRY': '/srv/reg.json'}


def test_failure_reports_exit_code_and_last_error_line(fake, monkeypatch):
    path, _calls = fake
    monkeypatch.setenv('FAKE_ANTCTL_BEHAVIOUR', 'fail')
    reason = 'exit code 1: Could not connect to the node registry: permission denied'
    with pytest.raises(AntctlError, match=reason) as info:
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


# A color-eyre report as antctl prints it (ant-node-manager's main uses color_eyre::install; the
# report layout is color-eyre's: "Error:", numbered causes, "Location:", the backtrace hint).
EYRE_REPORT = """Error:
   0: \x1b[91mCould not connect to RPC endpoint 'https://127.0.0.1:13002'\x1b[0m
   1: transport error

Location:
   \x1b[35mant-service-management/src/rpc.rs\x1b[0m:\x1b[35m109\x1b[0m

Backtrace omitted. Run with RUST_BACKTRACE=1 environment variable to display it.
Run with RUST_BACKTRACE=full to include source snippets.
"""


@pytest.mark.parametrize('text,reason', [
    (EYRE_REPORT, "Could not connect to RPC endpoint 'https://127.0.0.1:13002': transport error"),
    ('Error: \n   0: Failed to download release after 3 tries.\n\nLocation:\n   ant-node-manager/src/helpers.rs:176\n',
     'Failed to download release after 3 tries.'),
    ('Error: No service named \'antnode9\'\n', "No service named 'antnode9'"),
    ('Error:\n   0: a message that\n      spans two lines\n\nLocation:\n   x.rs:1\n', 'a message that spans two lines'),
    ('Refreshing the node registry...\nsome progress\n', None),
    ('', None),
])
def test_eyre_reason(text, reason):
    assert _antctl.eyre_reason(text) == reason


def test_failure_names_the_eyre_reason_not_the_backtrace_hint(fake, monkeypatch, tmp_path):
    path, _calls = fake
    report = tmp_path / 'report.txt'
    report.write_text(EYRE_REPORT)
    monkeypatch.setenv('FAKE_ANTCTL_BEHAVIOUR', 'fail')
    monkeypatch.setenv('FAKE_ANTCTL_STDERR', str(report))
    with pytest.raises(AntctlError) as info:
        _antctl.Antctl(path).status()
    assert str(info.value).endswith("failed with exit code 1: Could not connect to RPC endpoint "
                                    "'https://127.0.0.1:13002': transport error")


def test_status_with_no_output_is_an_empty_registry():
    # The real antctl prints nothing at all (exit 0) when its registry is empty.
    assert _antctl.parse_status('') == []
    assert _antctl.parse_status('\n') == []


def test_empty_status_as_root_is_an_empty_host(fake, tmp_path, monkeypatch):
    path, _calls = fake
    empty = tmp_path / 'empty.txt'
    empty.write_text('')
    monkeypatch.setenv('FAKE_ANTCTL_STATUS', str(empty))
    monkeypatch.setattr(_antctl.os, 'geteuid', lambda: 0)
    assert _antctl.Antctl(path).status() == []


def test_empty_status_when_not_root_asks_for_become(fake, tmp_path, monkeypatch):
    # Not root, antctl reads the user's own registry: "no services" means "not allowed to see them".
    path, _calls = fake
    empty = tmp_path / 'empty.txt'
    empty.write_text('')
    monkeypatch.setenv('FAKE_ANTCTL_STATUS', str(empty))
    monkeypatch.setattr(_antctl.os, 'geteuid', lambda: 1000)
    with pytest.raises(AntctlError, match=r'not run as root .* run the task with become'):
        _antctl.Antctl(path).status()


def test_nodes_seen_when_not_root_are_returned(fake, monkeypatch):
    path, _calls = fake
    monkeypatch.setattr(_antctl.os, 'geteuid', lambda: 1000)
    assert len(_antctl.Antctl(path).status()) == 5
