"""Relay: an authenticated gateway between AI assistants and the apps that talk to them."""

__version__ = "0.1.0"
