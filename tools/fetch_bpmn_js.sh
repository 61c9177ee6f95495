#!/usr/bin/env bash
# The bpmn-js viewer for the designer's diagrams, served by liaison itself (see fetch_npm_asset.sh).
exec "$(dirname "$0")/fetch_npm_asset.sh" bpmn-js 18.31.1 \
  sha512-Hc7LzrgwfcBRUAdI/380Q2v1MJ115atGEVGadawLfDbHdo+r+IkmNj8fuYPFmWglUYt1KYIaC46OeX16HGTKQw== \
  bpmn-js "the designer will show a notice instead of the diagram" \
  dist/bpmn-navigated-viewer.production.min.js dist/assets/diagram-js.css dist/assets/bpmn-js.css LICENSE
