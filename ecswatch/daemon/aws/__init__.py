"""Talking to AWS: boto3 clients, which errors are whose fault, retry policies and budgets.

May import: ecswatch.config, ecswatch.domain. Nothing else in the daemon.
"""
