"""Tests of relay.history."""
