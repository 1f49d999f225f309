#!/usr/bin/env bash
# Runs a command with what WebGPU needs on a Linux machine: a Vulkan loader and driver for Dawn in
# Node, and Chromium for the end-to-end tests. Without a GPU driver, Chromium's SwiftShader serves.
set -euo pipefail
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/lib/chromium/vk_swiftshader_icd.json ] \
   && ! ls /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json /usr/local/nvidia/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  export VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
fi
# The project's own tools, whatever the working directory (the octoclip CLI runs from anywhere).
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/node_modules/.bin:$PATH"
exec "$@"
