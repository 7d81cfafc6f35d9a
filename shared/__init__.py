"""Roomcast's wire protocol: pure, sans-I/O code shared by the hub and the client."""

__version__ = "0.1.0"
