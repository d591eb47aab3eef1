"""HTTP API of a region controller (OpenStack subset + agent + admin)."""
