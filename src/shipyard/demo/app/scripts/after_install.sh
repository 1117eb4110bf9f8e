#!/bin/sh
echo "installed $(wc -c < /srv/shipyard-demo/www/index.html) bytes of site"
