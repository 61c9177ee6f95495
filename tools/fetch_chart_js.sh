#!/usr/bin/env bash
# Chart.js for the SLA page, served by liaison itself (see fetch_npm_asset.sh).
exec "$(dirname "$0")/fetch_npm_asset.sh" chart.js 4.6.1 \
  sha512-hJyniucsFmq//EvXYvJ6c6mahPoI3kaxdjVH8awTaJ/fDNWeSqqqArixMJWkWNN6fcYvPU3HneSANFNYtRi61g== \
  chart.js "the SLA page will show tables instead of charts" \
  dist/chart.umd.min.js LICENSE.md
