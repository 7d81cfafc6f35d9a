"""Shared pytest settings."""

from hypothesis import settings

settings.register_profile("roomcast", max_examples=200, deadline=None)
settings.load_profile("roomcast")
