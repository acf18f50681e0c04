"""Tests of relay.clients."""
