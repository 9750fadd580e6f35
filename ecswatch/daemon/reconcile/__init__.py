"""Reconciliation with the ECS API: the pass, the lease, ECS reads, service counts, their metrics.

May import: state, aws, domain. Never pipeline.
"""
