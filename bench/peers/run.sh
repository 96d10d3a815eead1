#!/usr/bin/env bash
# The side-by-side kit's one entry point (see bench/peers/README.md):
#   bench/peers/run.sh setup            Debian packages and the pinned node-oidc-provider
#   bench/peers/run.sh saml [options]   SAML SSO: SimpleSAMLphp vs idp serve (memory and Redis)
#   bench/peers/run.sh oidc [options]   client_credentials, introspection: node-oidc-provider vs idp
#   bench/peers/run.sh all [options]    setup, then every row in one interleaved run
#   bench/peers/run.sh rsa              RSA-2048 / P-256 signs/s per stack on the servers' core
# Options: bench/peers/run.sh saml --help. Environment: IDP_CHECKOUT (default: this checkout),
# PEERS_WORK (default bench/peers/.work), PEERS_SERVER_CPU (0), PEERS_LOAD_CPU (1). Run as root.
set -euo pipefail
KIT=$(cd "$(dirname "$0")" && pwd)
IDP_CHECKOUT=$(realpath -m "${IDP_CHECKOUT:-$KIT/../..}")
PEERS_WORK=$(realpath -m "${PEERS_WORK:-$KIT/.work}")
PEERS_SERVER_CPU=${PEERS_SERVER_CPU:-0}
PEERS_LOAD_CPU=${PEERS_LOAD_CPU:-1}
export IDP_CHECKOUT PEERS_WORK PEERS_SERVER_CPU PEERS_LOAD_CPU PYTHONDONTWRITEBYTECODE=1
PY=$IDP_CHECKOUT/.venv/bin/python
NODE_DIR=$PEERS_WORK/oidc-node

need_project() {
  if [ ! -x "$IDP_CHECKOUT/.venv/bin/idp" ]; then
    echo "no $IDP_CHECKOUT/.venv/bin/idp: build the project's virtualenv first" \
         "((cd $IDP_CHECKOUT && ./dev demo --help)), or set IDP_CHECKOUT" >&2
    exit 1
  fi
}

# Apache's children run as www-data and must reach PEERS_WORK: every folder above needs o+x
check_reachable() {
  local d=$PEERS_WORK blocked=()
  while [ "$d" != / ]; do
    d=$(dirname "$d")
    if [ -e "$d" ] && [ $(( 0$(stat -c %a "$d") & 1 )) -eq 0 ]; then blocked+=("$d"); fi
  done
  if [ ${#blocked[@]} -gt 0 ]; then
    echo "www-data cannot reach $PEERS_WORK (SimpleSAMLphp runs as www-data under Apache)." >&2
    echo "Allow it with: chmod o+x ${blocked[*]}  (or set PEERS_WORK elsewhere)" >&2
    return 1
  fi
}

setup() {
  local need=() p
  export DEBIAN_FRONTEND=noninteractive
  for p in simplesamlphp libapache2-mod-php php-xml php-mbstring apache2 wrk nodejs npm \
           openssl redis-server; do
    # a nodejs from another repository may bring its own npm (and conflict with Debian's)
    [ "$p" = npm ] && command -v npm >/dev/null && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing Debian packages: ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  need_project
  mkdir -p "$NODE_DIR"
  cp "$KIT/oidc-node/package.json" "$KIT/oidc-node/package-lock.json" "$NODE_DIR/"
  if ! cmp -s "$KIT/oidc-node/package-lock.json" "$NODE_DIR/node_modules/.peers-lock"; then
    echo "npm ci of node-oidc-provider (pinned by bench/peers/oidc-node/package-lock.json)"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$KIT/oidc-node/package-lock.json" "$NODE_DIR/node_modules/.peers-lock"
  fi
  check_reachable || echo "(the saml rows need it; the oidc rows do not)" >&2
  echo "setup done: node-oidc-provider $(node -p "require('$NODE_DIR/node_modules/oidc-provider/package.json').version")" \
       "on node $(node --version), SimpleSAMLphp $(dpkg-query -W -f='${Version}' simplesamlphp)," \
       "measuring $IDP_CHECKOUT"
}

compare() {
  need_project
  [ "$1" = oidc ] || check_reachable
  mkdir -p "$PEERS_WORK/logs" "$NODE_DIR"
  cp "$KIT/oidc-node/server.mjs" "$NODE_DIR/"
  local log
  log=$PEERS_WORK/logs/$1-$(date +%Y%m%dT%H%M%S).txt
  PEERS_COMMAND="bench/peers/run.sh $*" \
    taskset -c "$PEERS_LOAD_CPU" "$PY" "$KIT/compare.py" "$@" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

rsa() {
  need_project
  mkdir -p "$PEERS_WORK/rsa"
  cd "$PEERS_WORK/rsa"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem 2>/dev/null
  local c=$PEERS_SERVER_CPU
  echo "openssl speed -seconds 2 rsa2048 on core $c:"
  taskset -c "$c" openssl speed -seconds 2 rsa2048 2>/dev/null | tail -1
  taskset -c "$c" "$PY" "$KIT/lib/sign_speed.py" rsa.pem ec.pem
  if command -v php >/dev/null; then
    taskset -c "$c" php -r '
      $k = openssl_pkey_get_private(file_get_contents("rsa.pem")); $d = str_repeat("x", 600);
      $n = 0; $t = microtime(true);
      while (microtime(true) - $t < 2) { openssl_sign($d, $s, $k, OPENSSL_ALGO_SHA256); $n++; }
      printf("php openssl_sign RSA-2048 SHA-256: %d signs/s\n", $n / (microtime(true) - $t));'
  fi
  taskset -c "$c" node -e '
    const { createPrivateKey, sign } = require("node:crypto");
    const fs = require("node:fs"); const d = Buffer.alloc(600, "x");
    for (const [f, what] of [["rsa.pem", "RSA-2048"], ["ec.pem", "ECDSA P-256"]]) {
      const k = createPrivateKey(fs.readFileSync(f)); let n = 0; const t = performance.now();
      while (performance.now() - t < 2000) { sign("sha256", d, k); n++; }
      console.log(`node crypto.sign ${what} SHA-256: ${Math.round(n * 1000 / (performance.now() - t))} signs/s`);
    }'
}

cmd=${1:-}
case "$cmd" in
  setup) setup ;;
  saml|oidc) compare "$@" ;;
  all) setup; compare "$@" ;;
  rsa) rsa ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
