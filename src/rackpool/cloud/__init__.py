"""rackpool cloud part."""
