#!/bin/sh
echo "preparing install of $APPLICATION_NAME deployment $DEPLOYMENT_ID"
mkdir -p /srv/shipyard-demo
