"""``openstack`` provider driver; openstacksdk is imported only by its ``adapter`` module,
so loading the pool config does not pay for importing the SDK."""

from rackpool.pool.drivers.openstack.config import OpenStackProvider

__all__ = ["OpenStackProvider"]
