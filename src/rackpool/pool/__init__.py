"""rackpool pool part."""
