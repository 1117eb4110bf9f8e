"""Tests of the traffic routers (memory and real HAProxy)."""
