"""Fakes shipped for tests, benchmarks and demos."""
