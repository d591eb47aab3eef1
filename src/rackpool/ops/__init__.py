"""rackpool ops part."""
