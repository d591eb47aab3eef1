"""The node pool: keeps CI test nodes ready across several providers.

Modules, one concern each:

- ``config``   the pool config model (``PoolConfig``), nodepool's concepts and names.
- ``model``    frozen value objects that cross boundaries (``Node``, ``NodeRequest``).
- ``errors``   this part's exception hierarchy.
- ``store``    persistence behind :class:`~rackpool.pool.store.base.Store` (SQLite here).
- ``drivers``  providers as state machines (``openstack``, ``static``, ``fake``).
- ``provider`` the framework side of one provider: executor, health, quota cache.
- ``launcher`` the control loop: requests, launches, min-ready, deletes, leak cleanup.
- ``api``      REST API and nodepool-style read endpoints; ``metrics`` Prometheus.
- ``daemon``   ``rackpool pool serve``; ``client`` is what the CLI uses to talk to it.
"""
