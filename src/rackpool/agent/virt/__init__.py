"""Virt drivers: each translates between the agent and one backend.

Every driver package has the same shape: ``__init__.py`` (exports), ``config.py``
(its pydantic settings), ``adapter.py`` (the class implementing ``VirtDriver``).
"""
