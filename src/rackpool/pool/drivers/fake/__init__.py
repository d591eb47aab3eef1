"""In-memory ``fake`` provider driver."""

from rackpool.pool.drivers.fake.adapter import FakeAdapter, FakeCloud, SharedFakeCloud
from rackpool.pool.drivers.fake.config import FakeProvider

__all__ = ["FakeAdapter", "FakeCloud", "FakeProvider", "SharedFakeCloud"]
