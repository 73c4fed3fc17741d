"""What is known: fact models, the store, import and export (facts interchange format v1)."""
