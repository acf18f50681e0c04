"""Tests of relay.web."""
