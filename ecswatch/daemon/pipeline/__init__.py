"""The message pipeline: receive -> hold -> process -> settle (fetchers, the in-flight owner,
the pause policy, deletes, workers).

May import: state, aws, expose.metrics, expose.service_gauges, domain. Never reconcile.
"""
