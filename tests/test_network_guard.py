import socket

import pytest
from pytest_socket import SocketConnectBlockedError


def test_connections_outside_loopback_are_refused():
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
