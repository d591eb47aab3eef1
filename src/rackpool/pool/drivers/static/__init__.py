"""``static`` provider driver: fixed SSH hosts."""

from rackpool.pool.drivers.static.adapter import StaticAdapter
from rackpool.pool.drivers.static.config import StaticProvider

__all__ = ["StaticAdapter", "StaticProvider"]
