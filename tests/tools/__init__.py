"""Tests of relay.tools."""
