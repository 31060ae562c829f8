"""The daemon's listeners: concurrent syncs (a tick, a replayed operation, a scrape's refresh) never open
the same port twice.

Each sync decides which ports to open, then awaits each bind; a second sync running meanwhile used to
pick the same not-yet-opened ports and fail with "address already in use" (10,000-node runs logged
thousands of these). Ports are claimed before the first await now.
"""

from __future__ import annotations

import asyncio

from ant_fleet_sim import layout
from ant_fleet_sim.daemon import SimDaemon
from ant_fleet_sim.model import SimConfig


def test_concurrent_syncs_open_each_port_once(tmp_path):
    config = SimConfig(hosts=3, nodes_per_host=4, base_port=layout.free_port_range(12), api_port=layout.free_port())
    daemon = SimDaemon(tmp_path / 'sim', config)

    async def scenario():
        results = await asyncio.gather(*(daemon.sync_listeners() for _ in range(4)))
        listening = sum(1 for ep in daemon.endpoints.values() if ep.server is not None)
        for ep in daemon.endpoints.values():
            daemon._close_endpoint(ep)
        return results, listening

    results, listening = asyncio.run(scenario())
    assert results == [[], [], [], []]  # no sync failed to bind a port
    assert listening == 12
