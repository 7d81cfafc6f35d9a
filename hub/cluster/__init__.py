"""Cluster mode (``roomcast-hub --nats``): the NATS JetStream shell around the sans-I/O core."""
