from rackpool.cli import entry

entry()
