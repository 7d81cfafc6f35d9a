"""Roomcast hub: the registry of rooms and the trio process that fans datagrams out."""
