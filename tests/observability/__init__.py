"""Tests of relay.observability."""
