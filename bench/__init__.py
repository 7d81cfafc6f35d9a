"""Roomcast fan-out benchmark: `make bench` (see bench/README.md)."""
