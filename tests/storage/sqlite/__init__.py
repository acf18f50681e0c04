"""Tests of relay.storage.sqlite."""
