"""Test doubles that speak real protocols (used by the tests and the benchmarks, usable offline by anyone)."""
