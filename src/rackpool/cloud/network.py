"""Instance addresses from the region's range, allocated without reuse races.

The primary key on ``addresses.address`` makes a double allocation impossible even
with several controllers on one database; the cursor walks forward so a freed
address is not handed out again at once (stale ARP/known_hosts entries).
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import Connection, delete, insert
from sqlalchemy.exc import IntegrityError

from rackpool.cloud.db.schema import addresses
from rackpool.core.errors import TemporaryError


class AddressesExhausted(TemporaryError):
    pass


class AddressPool:
    def __init__(self, cidr: str, gateway: str) -> None:
        net = ipaddress.ip_network(cidr)
        self.network = net
        self.prefix = net.prefixlen
        self.gateway = gateway
        self._first = int(net.network_address) + 1
        self._last = int(net.broadcast_address) - 1
        self._gateway_int = int(ipaddress.ip_address(gateway))
        self._cursor = self._first

    @property
    def size(self) -> int:
        return self._last - self._first  # less the gateway

    def allocate(self, conn: Connection, server_id: str, now: float) -> str:
        span = self._last - self._first + 1
        for step in range(span):
            candidate = self._first + (self._cursor - self._first + step) % span
            if candidate == self._gateway_int:
                continue
            addr = str(ipaddress.ip_address(candidate))
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(addresses).values(
                            address=addr, server_id=server_id, allocated_at=now
                        )
                    )
            except IntegrityError:
                continue
            self._cursor = candidate + 1 if candidate < self._last else self._first
            return addr
        raise AddressesExhausted(f"no free address left in {self.network}")

    @staticmethod
    def release(conn: Connection, server_id: str) -> None:
        conn.execute(delete(addresses).where(addresses.c.server_id == server_id))


def mac_for(address: str) -> str:
    """A stable locally administered MAC (fa:16:3e is what Neutron uses)."""
    tail = int(ipaddress.ip_address(address)) & 0xFFFFFF
    return f"fa:16:3e:{(tail >> 16) & 0xFF:02x}:{(tail >> 8) & 0xFF:02x}:{tail & 0xFF:02x}"
