"""The writes and their rules: the task/instance store, service state, DynamoDB helpers.

May import: aws, domain. Never pipeline, reconcile or expose.
"""
