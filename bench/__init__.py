"""Benchmarks and the synthetic HR generator."""
