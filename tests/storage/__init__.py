"""Tests of relay.storage."""
