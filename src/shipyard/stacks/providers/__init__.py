"""Resource providers: each resource type carried out through the boto3 client of the
service that owns it, as CloudFormation calls AWS (here: the server's own endpoint)."""
