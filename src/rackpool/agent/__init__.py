"""rackpool agent part."""
