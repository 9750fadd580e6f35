"""What the process shows the world: HTTP endpoints, metric instruments, the per-service gauges
from the stored state, queue depth, preflight.

May import: aws, domain. Never pipeline, state or reconcile.
"""
