"""Benchmarks that score personalization models (paper 4.1)."""
