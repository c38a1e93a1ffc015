#!/usr/bin/env bash
# Installs the external SCIM server of the interop tests (see README.md):
# the exact versions in package-lock.json, into node_modules/ beside this
# script (ignored by git). Needs node and npm (Debian: apt-get install nodejs
# npm). Safe to run again; does nothing when already installed.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "external-scim: node and npm are needed (Debian: apt-get install -y nodejs npm)" >&2
  exit 1
fi
stamp=node_modules/.iamflow-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  echo "external-scim: already installed"
  exit 0
fi
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
cp package-lock.json "$stamp"
echo "external-scim: installed $(node -p 'Object.entries(require("./package.json").dependencies).map(([n,v])=>n+"@"+v).join(" ")')"
