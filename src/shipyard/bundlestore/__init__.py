"""The built-in bundle store: an S3-compatible API over files on disk.

``disk`` keeps buckets and versioned objects, ``uploads`` multipart uploads; ``api``
routes S3 requests (``auth`` verifies SigV4 headers and presigned URLs, ``access``
decides what each key may do, ``payload``
reads bodies, ``call`` is what each operation is given, ``object_ops`` and
``multipart_ops`` are the operations, ``s3xml`` renders); ``urls`` presigns the bundle
URLs handed to agents.
"""
