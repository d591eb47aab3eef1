"""Pure domain: states, value objects, errors, clock, config loading. No network I/O."""
