"""The ``smartfactory`` command: one entry point for every part of the platform."""
