#!/bin/sh
# `npm start [zoo.cfg]`: Corral from its start-up snapshot when one was built for this
# Node (scripts/build-snapshot.mjs, run by `npm install`), else from its ES modules.
root="$(cd "$(dirname "$0")/.." && pwd)"
blob="$root/dist/snapshot/node-$(node -v).blob"
if [ -f "$blob" ]; then exec node --snapshot-blob "$blob" start "$@"; fi
exec node "$root/dist/src/cli/main.js" start "$@"
