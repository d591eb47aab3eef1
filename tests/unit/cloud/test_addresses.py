"""The address allocator answers in a constant number of queries at any range size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, update

from rackpool.cloud.db.engine import make_engine, upgrade
from rackpool.cloud.db.schema import address_ranges
from rackpool.cloud.network import AddressesExhausted, AddressPool


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'region.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_a_small_range_fills_then_reuses_the_oldest_released(engine: Engine) -> None:
    pool = AddressPool("198.18.0.0/29", "198.18.0.1")  # .2-.6 usable
    pool.ensure(engine)
    with engine.begin() as conn:
        got = [pool.allocate(conn, f"s{i}", now=float(i)) for i in range(5)]
        assert got == [f"198.18.0.{i}" for i in range(2, 7)]
        with pytest.raises(AddressesExhausted, match="no free address left in 198.18.0.0/29"):
            pool.allocate(conn, "s-full", now=10.0)
        AddressPool.release(conn, "s3", now=11.0)  # .5
        AddressPool.release(conn, "s1", now=12.0)  # .3
        assert pool.allocate(conn, "a", now=13.0) == "198.18.0.5"
        assert pool.allocate(conn, "b", now=14.0) == "198.18.0.3"


def test_a_released_address_waits_while_fresh_ones_remain(engine: Engine) -> None:
    pool = AddressPool("198.18.0.0/24", "198.18.0.1")
    pool.ensure(engine)
    with engine.begin() as conn:
        first = pool.allocate(conn, "s1", now=1.0)
        AddressPool.release(conn, "s1", now=2.0)
        assert pool.allocate(conn, "s2", now=3.0) != first


def test_a_full_slash_8_is_refused_without_walking_it(engine: Engine) -> None:
    pool = AddressPool("10.0.0.0/8", "10.0.0.1")
    pool.ensure(engine)
    with engine.begin() as conn:
        assert pool.allocate(conn, "s1", now=1.0) == "10.0.0.2"
        # every one of the 16.7M addresses handed out and none released: the state the
        # allocator keeps after filling the range (the test does not insert 16.7M rows)
        conn.execute(
            update(address_ranges)
            .where(address_ranges.c.cidr == "10.0.0.0/8")
            .values(next_free=int(pool.network.broadcast_address))
        )
    statements = _statements(engine)
    with engine.begin() as conn, pytest.raises(AddressesExhausted, match="10.0.0.0/8"):
        pool.allocate(conn, "s2", now=2.0)
    assert len(statements) <= 4, statements  # BEGIN, the mark, the free list: no walk
    statements.clear()
    with engine.begin() as conn:
        AddressPool.release(conn, "s1", now=3.0)
        assert pool.allocate(conn, "s3", now=4.0) == "10.0.0.2"


def test_state_is_rebuilt_from_addresses_held_before_it_existed(engine: Engine) -> None:
    from sqlalchemy import insert

    from rackpool.cloud.db.schema import addresses

    with engine.begin() as conn:
        for last in (2, 3, 5):
            conn.execute(
                insert(addresses).values(address=f"198.18.0.{last}", server_id=f"old{last}",
                                         allocated_at=0.0)
            )  # fmt: skip
    pool = AddressPool("198.18.0.0/29", "198.18.0.1")
    pool.ensure(engine)
    with engine.begin() as conn:
        got = {pool.allocate(conn, f"n{i}", now=1.0) for i in range(2)}
        assert got == {"198.18.0.6", "198.18.0.4"}
        with pytest.raises(AddressesExhausted):
            pool.allocate(conn, "n-full", now=2.0)
