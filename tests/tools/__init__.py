"""Test tools: a hub launcher, a textbook-style client, a lossy UDP proxy."""
