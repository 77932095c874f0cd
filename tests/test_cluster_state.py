"""The cluster's ports: distinct, free, and out of the kernel's ephemeral range (CI once saw
PostgreSQL and SeaweedFS's S3 given one port by two ``bind(0)`` probes)."""

from __future__ import annotations

import socket

from orchestration.cluster.state import ClusterState, ephemeral_range_start, free_ports


def test_ports_are_distinct_free_and_below_the_ephemeral_range(tmp_path):
    ceiling = ephemeral_range_start()
    for _ in range(50):
        ports = ClusterState.new(tmp_path, workers=2).ports
        grpc = [port + 10_000 for name, port in ports.items() if name.startswith("seaweedfs_")]
        every = [*ports.values(), *grpc]
        assert len(set(every)) == len(every) == 14
        assert all(10_000 <= port < ceiling for port in every)


def test_a_port_in_use_is_not_chosen():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        busy = held.getsockname()[1]
        for _ in range(200):
            assert busy not in free_ports(("a", "b"), ("c",), offset=10_000).values()
