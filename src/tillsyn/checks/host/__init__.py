"""Checks against the host the agent runs on."""
