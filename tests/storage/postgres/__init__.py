"""Tests of relay.storage.postgres."""
