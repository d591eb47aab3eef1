"""rackpool web part."""
