"""rackpool: bare-metal racks as a small cloud feeding a CI node pool."""

__version__ = "0.1.0"
