"""Tests of relay.backends."""
