"""What the process shows the world: HTTP endpoints, metric instruments, queue depth, preflight.

May import: aws, domain. Never pipeline, state or reconcile.
"""
