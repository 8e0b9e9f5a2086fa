#!/bin/sh
# `npm start [zoo.cfg]`: Corral from its start-up snapshot when one was built for this
# Node (scripts/build-snapshot.mjs, run by `npm install`), else from its ES modules.
cd "$(dirname "$0")/.." || exit 1
blob="dist/snapshot/node-$(node -v).blob"
if [ -f "$blob" ]; then exec node --snapshot-blob "$blob" start "$@"; fi
exec node dist/src/cli/main.js start "$@"
