"""Tests of the sandbox MTProto server (twin/sandbox) and its pytest fixtures (fixtures.py)."""
