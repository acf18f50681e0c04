"""Tests of relay.chat."""
