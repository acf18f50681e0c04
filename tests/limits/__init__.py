"""Tests of relay.limits."""
