#!/usr/bin/env bash
# npm start: the octoclip studio at http://127.0.0.1:5173/ (the Vite dev server). Starting it needs
# only Node.js and the npm packages; the GPU work runs in the browser that opens the page.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/ensure-system.sh

section 'Node.js'
ensure_node
section 'npm dependencies'
ensure_npm_dependencies

URL='http://127.0.0.1:5173/'
section 'octoclip studio'
cat <<NOTE
Open ${URL} in a browser with WebGPU: Chrome or Edge 113+ (on Linux, start Chrome with
--enable-unsafe-webgpu or turn on chrome://flags/#enable-unsafe-webgpu), Firefox 141+ or Safari 26+.
Training runs on that computer's GPU. Stop the server with Ctrl+C.

NOTE
exec npx --no-install vite --host 127.0.0.1 --port 5173 --strictPort
