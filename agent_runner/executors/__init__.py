"""Executors: transports that run the worker command `run-agents exec` somewhere."""
