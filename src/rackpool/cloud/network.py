"""Instance addresses from the region's range, allocated without reuse races.

The primary key on ``addresses.address`` makes a double allocation impossible even
with several controllers on one database. Fresh addresses are handed out first (the
``address_ranges.next_free`` mark only moves up), and a released address waits in
``free_addresses`` until none is left, so it is not handed out again at once (stale
ARP/known_hosts entries). Every allocation, and the answer "the range is full", takes a
constant number of queries whatever the range's size: nothing walks the range.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from rackpool.cloud.db.schema import address_ranges, addresses, free_addresses
from rackpool.core.errors import TemporaryError

MAX_RACES = 16  # concurrent allocators (several controllers) moving the same mark


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

    @property
    def size(self) -> int:
        return self._last - self._first  # less the gateway

    def ensure(self, engine: Engine) -> None:
        """Create this range's allocation state, from the addresses already held."""
        cidr = str(self.network)
        with engine.begin() as conn:
            if conn.execute(
                select(address_ranges.c.cidr).where(address_ranges.c.cidr == cidr)
            ).first():
                return
            held = {
                int(ipaddress.ip_address(a))
                for (a,) in conn.execute(select(addresses.c.address))
                if ipaddress.ip_address(a) in self.network
            }
            top = max(held, default=self._first - 1)
            # addresses below the highest one held and not held: free, reusable
            holes = [i for i in range(self._first, top) if i not in held and i != self._gateway_int]
            if holes:
                conn.execute(
                    insert(free_addresses),
                    [{"address": str(ipaddress.ip_address(i)), "ip": i, "released_at": 0.0}
                     for i in holes],
                )  # fmt: skip
            conn.execute(insert(address_ranges).values(cidr=cidr, next_free=top + 1))

    def allocate(self, conn: Connection, server_id: str, now: float) -> str:
        for _ in range(MAX_RACES):
            candidate = self._take_fresh(conn)
            if candidate is None:
                candidate = self._take_released(conn)
            if candidate is None:
                raise AddressesExhausted(
                    f"no free address left in {self.network} (all {self.size} are in use)"
                )
            if candidate < 0:
                continue  # another allocator took it first
            addr = str(ipaddress.ip_address(candidate))
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(addresses).values(
                            address=addr, server_id=server_id, allocated_at=now
                        )
                    )
            except IntegrityError:
                continue  # held since before this state existed; the mark has moved past it
            return addr
        raise AddressesExhausted(f"could not allocate in {self.network}: too many concurrent races")

    def _take_fresh(self, conn: Connection) -> int | None:
        """The next never-used address (-1 if another allocator moved the mark)."""
        cidr = str(self.network)
        mark = conn.execute(
            select(address_ranges.c.next_free).where(address_ranges.c.cidr == cidr)
        ).scalar()
        if mark is None:
            raise RuntimeError(f"address range {cidr} has no state; AddressPool.ensure first")
        candidate = mark + 1 if mark == self._gateway_int else mark
        if candidate > self._last:
            return None
        moved = conn.execute(
            update(address_ranges)
            .where(address_ranges.c.cidr == cidr, address_ranges.c.next_free == mark)
            .values(next_free=candidate + 1)
        ).rowcount
        return int(candidate) if moved else -1

    def _take_released(self, conn: Connection) -> int | None:
        """The address released longest ago (-1 if another allocator took it)."""
        row = conn.execute(
            select(free_addresses.c.address, free_addresses.c.ip)
            .where(free_addresses.c.ip.between(self._first, self._last))
            .order_by(free_addresses.c.released_at, free_addresses.c.ip)
            .limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL: pass one another's pick
        ).first()
        if row is None:
            return None
        taken = conn.execute(
            delete(free_addresses).where(free_addresses.c.address == row.address)
        ).rowcount
        return int(row.ip) if taken else -1

    @staticmethod
    def release(conn: Connection, server_id: str, now: float) -> None:
        """Free the addresses of ``server_id``; of two controllers releasing at once
        (an agent's report retried on the other one) only the one that deleted them
        puts them on the free list."""
        held = list(conn.execute(
            delete(addresses).where(addresses.c.server_id == server_id)
            .returning(addresses.c.address)
        ).scalars())  # fmt: skip
        if not held:
            return
        conn.execute(
            insert(free_addresses),
            [{"address": a, "ip": int(ipaddress.ip_address(a)), "released_at": now} for a in held],
        )


def mac_for(address: str) -> str:
    """A stable locally administered MAC (fa:16:3e is what Neutron uses)."""
    tail = int(ipaddress.ip_address(address)) & 0xFFFFFF
    return f"fa:16:3e:{(tail >> 16) & 0xFF:02x}:{(tail >> 8) & 0xFF:02x}:{tail & 0xFF:02x}"
