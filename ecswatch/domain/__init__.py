"""Pure rules of ECS events: parsing, redaction, items, what counts; no I/O."""
