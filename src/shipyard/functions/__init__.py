"""The embedded function host: Shipyard's own implementation of the AWS Lambda API.

Modules, one concept each:

- ``api``: the Lambda API's routes and auth on the server's endpoint; ``call`` what an
  operation gets and how it answers; ``function_ops``, ``alias_ops``, ``invoke_ops`` the
  operations; ``names`` Lambda's names, ARNs, limits and error names; ``routing`` the
  weighted choice of an alias's version; ``code`` the packages on disk.
- ``host``: warm workers per version, concurrency, timeouts, events, credentials;
  ``worker`` one worker process; ``runtime_api`` the Lambda Runtime API it talks to;
  ``setup`` builds the host from the server's config.

The deployment side talks to all of it through boto3's ``lambda`` client only.
"""
