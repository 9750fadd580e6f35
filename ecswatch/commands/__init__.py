"""Operator commands that read or fix the tables: bootstrap, report, reconcile."""
