"""The host agent: registers a host with its region, pulls desired instances, converges
them through a virt driver (``container``, ``libvirt`` or ``fake``) and reports facts.

Programmatic entry point: ``rackpool.agent.daemon.Agent(config).run()``.
"""
