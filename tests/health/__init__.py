"""Tests of relay.health."""
