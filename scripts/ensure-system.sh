# What octoclip needs on a machine, checked (and installed where it can be) in one place.
# Sourced by scripts/start.sh and scripts/test.sh, which call the functions they need:
#
#   section TITLE                  prints a section header
#   ensure_node                    Node.js 20 or newer, or says where to get it
#   ensure_test_system_packages    chromium + libvulkan1 (Debian): installed with apt-get when root,
#                                  otherwise prints the command to run and fails
#   ensure_npm_dependencies        npm install when node_modules is missing or package-lock.json is newer
#
# Starting the studio needs only Node and npm packages; the tests also need a browser and Vulkan.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "scripts/ensure-system.sh is sourced by scripts/start.sh and scripts/test.sh; run those (npm start, npm test)." >&2
  exit 2
fi

OCTOCLIP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Chromium: the browser the end-to-end tests drive, and its SwiftShader Vulkan driver
# (/usr/lib/chromium/vk_swiftshader_icd.json), which serves WebGPU in Node on machines without a GPU.
# libvulkan1: the Vulkan loader Dawn (the `webgpu` npm package) opens.
TEST_SYSTEM_PACKAGES=(chromium libvulkan1)

section() {
  printf '\n==== %s ====\n' "$*"
}

ensure_node() {
  if ! command -v node >/dev/null 2>&1; then
    echo "octoclip needs Node.js 20 or newer, and there is no 'node' on PATH: see https://nodejs.org/" >&2
    return 1
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 20 ]; then
    echo "octoclip needs Node.js 20 or newer; this is $(node --version): see https://nodejs.org/" >&2
    return 1
  fi
  echo "Node.js $(node --version), npm $(npm --version)"
}

# True when the Debian package is installed; without dpkg, when what it provides is there.
has_package() {
  if command -v dpkg-query >/dev/null 2>&1; then
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = 'install ok installed' ]
    return
  fi
  case "$1" in
    chromium) [ -x "${OCTOCLIP_CHROMIUM:-/usr/bin/chromium}" ] ;;
    # grep reads all of ldconfig's output (no -q), so that pipefail sees no SIGPIPE.
    libvulkan1) /sbin/ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null ;;
    *) return 1 ;;
  esac
}

ensure_test_system_packages() {
  local missing=() package
  for package in "${TEST_SYSTEM_PACKAGES[@]}"; do
    if ! has_package "$package"; then missing+=("$package"); fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "Installed: ${TEST_SYSTEM_PACKAGES[*]}"
    return 0
  fi
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    return 0
  fi
  echo "The tests need system packages that are missing (${missing[*]}). Install them with:" >&2
  echo "sudo apt-get install -y chromium libvulkan1"
  return 1
}

ensure_npm_dependencies() {
  # npm rewrites node_modules/.package-lock.json on every install that changes something.
  local installed="$OCTOCLIP_ROOT/node_modules/.package-lock.json"
  if [ -f "$installed" ] && ! [ "$OCTOCLIP_ROOT/package-lock.json" -nt "$installed" ]; then
    echo "node_modules is up to date with package-lock.json"
    return 0
  fi
  echo "Installing npm dependencies"
  (cd "$OCTOCLIP_ROOT" && npm install --no-audit --no-fund)
  # An install that changed nothing leaves the file's time alone: mark this state as installed.
  touch "$installed"
}
