"""What is required and what is wrong: rule packs, conditions, matching, violations, alerts, schedule, CLI."""
