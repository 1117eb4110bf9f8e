#!/bin/sh
set -e
grep -q "Hello from Shipyard" /srv/shipyard-demo/www/index.html
test -f /srv/shipyard-demo/running
echo "service is healthy"
