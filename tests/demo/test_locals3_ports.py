"""The local SeaweedFS server that the demo and the fault tests use: a killed server restarts on the ports
its endpoints name, or says which port stops it; it never moves silently (CI saw a restarted target
answer on new ports while the engine aborted its uploads on the old ones)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from drtransfer.locals3 import _GRPC_OFFSET, _pick_ports
from tests.conftest import start_seaweed


def ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_ports_and_their_grpc_twins_stay_below_the_ephemeral_range() -> None:
    # a client connection's local port comes from the ephemeral range: it could take a port of a killed
    # server before the server is back
    for _ in range(20):
        for port in _pick_ports(set()).values():
            assert port + _GRPC_OFFSET < ephemeral_low()


def test_a_killed_server_restarts_on_its_ports_with_its_data(tmp_path: Path) -> None:
    server = start_seaweed(tmp_path / "s3")
    try:
        server.client().create_bucket(Bucket="kept")
        server.client().put_object(Bucket="kept", Key="k", Body=b"body")
        with socket.create_connection(("127.0.0.1", server.ports["s3"])) as conn:  # leaves a TIME_WAIT
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            conn.recv(100)
            ports = dict(server.ports)
            server.kill()
        server.start()
        assert server.ports == ports
        assert server.client().get_object(Bucket="kept", Key="k")["Body"].read() == b"body"
    finally:
        server.stop(graceful=False)


def test_a_restart_whose_port_is_taken_names_it_and_does_not_move(tmp_path: Path) -> None:
    server = start_seaweed(tmp_path / "s3")
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        ports = dict(server.ports)
        server.kill()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the TIME_WAITs the kill left
        squatter.bind(("127.0.0.1", ports["s3"]))
        squatter.listen()
        with pytest.raises(RuntimeError, match=f"cannot restart on its ports: {ports['s3']} is taken"):
            server.start(timeout=5)
        assert server.ports == ports
    finally:
        squatter.close()
        server.stop(graceful=False)
