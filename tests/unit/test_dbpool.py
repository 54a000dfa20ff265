"""The look at a pooled connection's socket (``portal.dbpool``): dead when the server
said goodbye or closed it, alive when quiet, without sending anything."""

from __future__ import annotations

import socket

from portal.dbpool import closed_by_server


class Connection:
    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock

    def fileno(self) -> int:
        if self.sock is None:
            raise OSError("the connection is closed")
        return self.sock.fileno()


def test_a_quiet_connection_is_alive() -> None:
    ours, server = socket.socketpair()
    with ours, server:
        assert not closed_by_server(Connection(ours))


def test_a_connection_the_server_wrote_to_or_closed_is_dead() -> None:
    ours, server = socket.socketpair()
    with ours, server:
        server.sendall(b"E\x00\x00\x00\x10FATAL\x00")  # "terminating connection"
        assert closed_by_server(Connection(ours))
    ours, server = socket.socketpair()
    with ours:
        server.close()
        assert closed_by_server(Connection(ours))


def test_a_connection_closed_on_our_side_is_dead() -> None:
    assert closed_by_server(Connection(None))
