"""rackpool deploy part."""
