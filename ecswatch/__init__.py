"""ecswatch: exact ECS task and container-instance state in DynamoDB, from EventBridge via SQS."""

__version__ = "0.1.0"
