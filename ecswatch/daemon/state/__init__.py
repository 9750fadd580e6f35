"""The writes and their rules: the task/instance store, service state (and reading it back),
DynamoDB helpers.

May import: aws, domain. Never pipeline, reconcile or expose.
"""
