"""Remove for good what a container-driver agent left on this machine.

An agent leaves its instances running when it stops (restarts and upgrades must not
lose them). ``rackpool down`` and test cleanup use :func:`remove_container_host` when a
host is to be taken away completely.
"""

from __future__ import annotations

from pathlib import Path

from rackpool.agent.config import AgentConfig
from rackpool.agent.hostnet import remove_host_network


def remove_container_host(config: AgentConfig) -> int:
    """Destroy every instance in the agent's state dir, then its bridge; returns how many.

    The region switch (``network.switch``) is shared by the region's hosts and is left
    to the caller.
    """
    from rackpool.agent.virt.container import ContainerDriver

    removed = 0
    state = Path(config.state_dir)
    if state.is_dir():
        driver = ContainerDriver(config.container, state, config.host.name, config.network.bridge)
        try:
            for inst in driver.list():
                driver.destroy(inst.id)
                removed += 1
        finally:
            driver.close()
    remove_host_network(config.network.bridge)
    return removed
