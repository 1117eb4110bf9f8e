#!/bin/sh
# Stop the running revision (from the last successful deployment's bundle).
echo "stopping web app on $DEPLOYMENT_GROUP_NAME"
rm -f /srv/shipyard-demo/running
