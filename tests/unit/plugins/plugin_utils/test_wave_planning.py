"""Wave planning: host choice, Ansible-compatible batches, close-group spreading, rollback SLA."""

from __future__ import annotations

import pytest

from ansible_collections.autonomi.network_migration.plugins.module_utils import _kademlia
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning as wp
from ant_fleet_sim.model import make_peer_id  # real peer ids: close groups need keys that decode


def fleet(hosts=10, per_host=5, modes=None):
    modes = modes or {}
    return [
        {"host": "h%02d" % h, "service_name": "antnode%d" % i, "peer_id": make_peer_id(1, "h%02d" % h, i),
         "mode": modes.get("h%02d" % h, "libp2p_only")}
        for h in range(1, hosts + 1) for i in range(1, per_host + 1)
    ]


@pytest.mark.parametrize("spec,hosts,expected", [
    ([1, "10%", "25%"], 20, [1, 2, 5, 5, 5, 2]),
    ([2], 5, [2, 2, 1]),
    (["50%"], 3, [1, 1, 1]),
    ([1, "100%"], 4, [1, 3]),
])
def test_batch_sizes_match_ansible_serial(spec, hosts, expected):
    assert wp.batch_sizes(spec, hosts) == expected


@pytest.mark.parametrize("bad", [[], [0], ["0%"], ["150%"], ["abc"], [True], [-3]])
def test_bad_batches_are_refused(bad):
    with pytest.raises(wp.PlanError):
        wp.parse_batches(bad)


@pytest.mark.parametrize("bad", [150, -1, 0, "abc", None, True])
def test_bad_wave_is_refused(bad):
    with pytest.raises(wp.PlanError, match="wave=.* is not accepted"):
        wp.plan_wave(fleet(), bad)


def test_wave_takes_whole_hosts_in_name_order():
    plan = wp.plan_wave(fleet(), 25, batches=[1, "100%"])
    # 25 % of 50 nodes = 13 nodes -> 3 hosts of 5 nodes.
    assert plan["target_nodes"] == 13
    assert sorted(plan["hosts"]) == ["h01", "h02", "h03"]
    assert plan["nodes_to_switch"] == 15
    assert sum(plan["batch_sizes"]) == 3


def test_wave_skips_migrated_and_excluded_hosts():
    plan = wp.plan_wave(fleet(modes={"h01": "dual_stack"}), 25, exclude_hosts=["h02"], batches=["100%"])
    assert plan["nodes_at_stage"] == 5
    assert "h01" not in plan["hosts"] and "h02" not in plan["hosts"]
    assert sorted(plan["hosts"]) == ["h03", "h04"]


def test_wave_below_progress_does_nothing_and_says_so():
    plan = wp.plan_wave(fleet(modes={"h01": "dual_stack", "h02": "dual_stack"}), 10)
    assert plan["hosts"] == []
    assert "nothing to do" in plan["message"] and "20.00 %" in plan["message"]


def test_next_stage_needs_previous_stage():
    # iroh_primary can only be taken by hosts already in dual_stack.
    plan = wp.plan_wave(fleet(modes={"h05": "dual_stack"}), 100, stage="iroh_primary", batches=["100%"])
    assert plan["hosts"] == ["h05"]


def test_batches_respect_close_group_share():
    nodes = fleet(hosts=20, per_host=5)
    plan = wp.plan_wave(nodes, 100, batches=["50%"], max_close_group_share=0.4)
    groups = _kademlia.close_groups_of_nodes([n["peer_id"] for n in nodes])
    peers_of = {}
    for n in nodes:
        peers_of.setdefault(n["host"], []).append(n["peer_id"])
    for batch in plan["batches"]:
        if len(batch) == 1:
            continue
        down = [p for h in batch for p in peers_of[h]]
        assert _kademlia.max_group_share(down, groups) <= 2
    assert sorted(plan["hosts"]) == sorted({n["host"] for n in nodes})


def test_fast_rollback_projection():
    proj = wp.project_fast_rollback(hosts=50, nodes_per_host=20, switch_seconds=list(range(100, 0, -1)), forks=25)
    assert proj["rounds"] == 2
    assert proj["switch_p95"] == 95.0
    assert proj["seconds"] == pytest.approx(2 * (95 + 2.0) + 50 * 0.4 / 2)
    assert wp.project_fast_rollback(0, 20, [])["seconds"] == 0


def test_the_waves_rollback_projection_is_the_rehearsed_model_over_the_readable_rounds():
    """The promise a wave checks (a fast rollback after it fits the SLA) uses what the rehearsal measured: the
    readable order's rounds and the calibrated fixed and per-round costs, not hosts / forks alone."""
    nodes = fleet(hosts=10, per_host=5, modes={"h%02d" % h: "dual_stack" for h in range(1, 3)})
    plan = wp.plan_wave(nodes, 100, batches=["100%"], switch_seconds=[4.0], rollback_forks=50)
    # After the wave every host is dual_stack: the readable order restarts them in two rounds (one round of 50
    # forks by hosts / forks alone), a count taken on the fleet as the wave leaves it, not as it is now.
    after = fleet(hosts=10, per_host=5, modes={"h%02d" % h: "dual_stack" for h in range(1, 11)})
    rounds = wp.rollback_fork_rounds(after, ["h%02d" % h for h in range(1, 11)], 50)
    assert rounds == 2 and wp.rollback_fork_rounds(nodes, ["h%02d" % h for h in range(1, 11)], 50) == 1
    proj = plan["rollback_projection"]
    model = wp.FAST_ROLLBACK_MODEL
    assert proj["rounds"] == rounds
    assert proj["seconds"] == pytest.approx(model["fixed_seconds"] + rounds * (4.0 + model["per_host_overhead"])
                                            + 10 * 0.4 / 2, abs=0.05)


def test_rollback_plan_takes_hosts_beyond_target():
    nodes = fleet(hosts=4, per_host=2, modes={"h01": "dual_stack", "h03": "iroh_primary"})
    fast = wp.plan_rollback(nodes, "libp2p_only", "fast")
    assert fast["hosts"] == ["h01", "h03"] and fast["batch_sizes"] == [2] and fast["nodes_to_switch"] == 4
    to_dual = wp.plan_rollback(nodes, "dual_stack", "gradual", batches=[1])
    assert to_dual["hosts"] == ["h03"] and to_dual["batch_sizes"] == [1]
    assert wp.plan_rollback(fleet(), "libp2p_only")["hosts"] == []
    with pytest.raises(wp.PlanError, match="strategy must be fast or gradual"):
        wp.plan_rollback(nodes, "libp2p_only", "slow")
    with pytest.raises(wp.PlanError, match="target must be"):
        wp.plan_rollback(nodes, "iroh_only")


def test_canaries_are_first_untouched_hosts_by_name():
    nodes = fleet(hosts=5, per_host=2, modes={"h01": "dual_stack"})
    assert wp.select_canaries(nodes, 2) == ["h02", "h03"]
    assert wp.select_canaries(nodes, 2, exclude_hosts=["h02"]) == ["h03", "h04"]


def test_rollback_limited_to_an_empty_host_list_touches_nothing():
    nodes = fleet(hosts=2, per_host=2, modes={"h01": "dual_stack"})
    assert wp.plan_rollback(nodes, "libp2p_only", only_hosts=[])["hosts"] == []
    assert wp.plan_rollback(nodes, "libp2p_only", only_hosts=["h01"])["hosts"] == ["h01"]


def test_a_frozen_or_interrupted_canary_is_judged_again_before_fresh_hosts():
    """Issue 11: a canary frozen without a verdict (monitoring down) or whose controller died is never
    left behind for fresh hosts."""
    nodes = fleet(hosts=5, per_host=2, modes={"h03": "dual_stack"})
    assert wp.select_canaries(nodes, 1, unjudged_hosts=["h03"]) == ["h03"]
    assert wp.select_canaries(nodes, 2, unjudged_hosts=["h03"]) == ["h03", "h01"]
    # All of them are judged, even beyond the count.
    two = fleet(hosts=5, per_host=2, modes={"h03": "dual_stack", "h04": "dual_stack"})
    assert wp.select_canaries(two, 1, unjudged_hosts=["h04", "h03"]) == ["h03", "h04"]
    # Gone from the fleet, excluded, back on libp2p_only, or beyond dual_stack (a promotion's): not taken.
    assert wp.select_canaries(nodes, 1, unjudged_hosts=["h09"]) == ["h01"]
    assert wp.select_canaries(nodes, 1, exclude_hosts=["h03"], unjudged_hosts=["h03"]) == ["h01"]
    assert wp.select_canaries(fleet(hosts=3, per_host=2), 1, unjudged_hosts=["h02"]) == ["h01"]
    promoted = fleet(hosts=3, per_host=2, modes={"h02": "iroh_primary"})
    assert wp.select_canaries(promoted, 1, unjudged_hosts=["h02"]) == ["h01"]
