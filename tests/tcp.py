"""Loopback TCP sockets as /proc/net/tcp tells: their ports, inodes and queues."""

LOOPBACK = '0100007F'


def _rows():
    """The fields of the line of each loopback TCP socket."""
    with open('/proc/net/tcp') as tcp:
        rows = tcp.read().splitlines()[1:]
    for row in rows:
        fields = row.split()
        if fields[1].startswith(LOOPBACK):
            yield fields


def _port(address: str) -> int:
    """The port of a loopback address (0 for any other, as a listener's peer)."""
    host, port = address.split(':')
    return int(port, 16) if host == LOOPBACK else 0


def lines():
    """(local port, remote port, inode) of each loopback TCP socket."""
    for fields in _rows():
        yield _port(fields[1]), _port(fields[2]), fields[9]


def queues() -> dict[tuple[int, int], tuple[int, int]]:
    """What each end of a loopback connection holds, by (its port, its peer's).

    (unsent, unread): bytes its holder wrote that the peer has not taken, and
    bytes that came that its holder has not read.
    """
    held = {}
    for fields in _rows():
        unsent, unread = fields[4].split(':')
        held[_port(fields[1]), _port(fields[2])] = int(unsent, 16), int(unread, 16)
    return held
