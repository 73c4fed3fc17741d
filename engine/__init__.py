"""What is required and what is wrong: rule packs, conditions, matching, violations, alerts, schedule, CLI."""

__version__ = "0.1.0"
