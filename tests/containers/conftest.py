"""The embedded ELBv2's server fixture, for the seam's contract tests."""

from tests.elbv2.conftest import elb_server

__all__ = ["elb_server"]
