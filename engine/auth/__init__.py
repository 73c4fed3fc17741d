"""Accounts, roles scoped to the org tree, and the authorization every entry point (CLI, HTTP) goes through."""
