"""Roomcast terminal client."""
