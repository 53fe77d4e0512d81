"""The control (admin) HTTP API: rules, reset, journal, per-service config."""
