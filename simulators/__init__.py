"""Simulated PLCs and lines whose true behaviour is known exactly (seeded, logged)."""
