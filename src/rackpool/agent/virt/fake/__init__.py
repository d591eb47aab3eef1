"""The in-memory ``fake`` virt driver for tests and benchmarks."""

from rackpool.agent.virt.fake.adapter import FakeDriver
from rackpool.agent.virt.fake.config import FakeConfig

__all__ = ["FakeConfig", "FakeDriver"]
