#!/bin/sh
echo "$DEPLOYMENT_ID" > /srv/shipyard-demo/running
echo "web app started for $DEPLOYMENT_ID"
