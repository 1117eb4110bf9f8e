"""Shipyard: a self-hosted, CodeDeploy-compatible deployment service."""

__version__ = "0.1.0"
