"""The control plane: one ASGI app serving the CodeDeploy API (plus Shipyard's
extension operations), the agent protocol and the S3-compatible bundle store.

Invariants:
- handlers are thin: validate, then call the store or the runner;
- every change to a deployment goes through the runner (and so the engine);
- errors leave as ``errors.ApiError`` and are rendered in one place (``app.py``).
"""
