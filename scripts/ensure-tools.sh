#!/usr/bin/env bash
# Puts the pinned third-party tools in .tools/bin: redis-server (Debian package), the Pulumi CLI and
# FerretDB (built from the Go module proxy) and Pulumi's dynamic-provider launcher (from the
# @pulumi/pulumi npm package). Built binaries live in a per-user cache keyed by tool and version,
# so a fresh clone reuses them; with everything cached this takes well under a second.
# See docs/tools.md for why each step is the way it is.
set -euo pipefail

PULUMI_VERSION=3.248.0
FERRETDB_VERSION=1.24.0
SCHEMATHESIS_VERSION=4.32.5
KUSTOMIZE_VERSION=5.8.2
COMPOSE_GO_VERSION=2.16.2

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${PDS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-deploy-service}
bin="$root/.tools/bin"
mkdir -p "$bin" "$cache"
started=$SECONDS

log() { echo "[tools] $*" >&2; }

go_env() {
  # The checksum database is not reachable from here; the module proxy is. Build with the local
  # toolchain only, and resolve modules on demand.
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOSUMDB=off CGO_ENABLED=0
}

# Builds into a temp dir then renames, so an interrupted build never leaves a half binary behind.
build_pulumi() {
  local out="$cache/pulumi/v$PULUMI_VERSION"
  [ -x "$out/pulumi" ] && return 0
  command -v go >/dev/null || { log "go is required to build the Pulumi CLI"; exit 1; }
  log "building the Pulumi CLI v$PULUMI_VERSION from the Go module proxy (first time only, ~5 min)"
  local t0=$SECONDS work
  work=$(mktemp -d)
  (
    cd "$work"
    go_env
    # pkg/v3 has replace directives, which only apply in the main module: build from a throw-away
    # main module that pins pkg and sdk and repeats the clipboard replace.
    cat > go.mod <<MOD
module pulumibuild

go 1.24

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
    go get "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
    go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
      -o "$work/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  )
  mkdir -p "$out"
  mv "$work/pulumi" "$out/pulumi"
  rm -rf "$work"
  log "built pulumi in $((SECONDS - t0)) s"
}

# FerretDB is built with the patches in scripts/patches/ferretdb-*.patch (why: each file's header);
# the cache folder is named after their hash, so changing a patch builds a new binary once.
ferretdb_patches=("$root"/scripts/patches/ferretdb-*.patch)
ferretdb_build="v$FERRETDB_VERSION-$(cat "${ferretdb_patches[@]}" | sha256sum | cut -c1-12)"

build_ferretdb() {
  local out="$cache/ferretdb/$ferretdb_build"
  [ -x "$out/ferretdb" ] && return 0
  command -v go >/dev/null || { log "go is required to build FerretDB"; exit 1; }
  log "building FerretDB $ferretdb_build from the Go module proxy (first time only, ~2 min)"
  local t0=$SECONDS work
  work=$(mktemp -d)
  (
    cd "$work"
    go_env
    # FerretDB panics at start unless build/version/version.txt holds its version, and a binary
    # built from a dependency still reports FerretDB as its main module (Go >= 1.24). So build
    # inside a writable copy of the published module, with the version file its release task writes.
    go mod init ferretdbbuild >/dev/null 2>&1
    go mod download -json "github.com/FerretDB/FerretDB@v$FERRETDB_VERSION" > dl.json
    src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' dl.json)
    cp -r "$src" module
    chmod -R u+w module
    echo "v$FERRETDB_VERSION" > module/build/version/version.txt
    cd module
    for p in "${ferretdb_patches[@]}"; do
      if command -v patch >/dev/null; then patch -p1 --forward --quiet < "$p"; else git apply -p1 "$p"; fi
    done
    go build -trimpath -ldflags "-s -w" -o "$work/ferretdb" ./cmd/ferretdb
  )
  mkdir -p "$out"
  mv "$work/ferretdb" "$out/ferretdb"
  chmod -R u+w "$work" && rm -rf "$work"
  log "built ferretdb in $((SECONDS - t0)) s"
}

apt_updated=""
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  log "installing $* with apt"
  [ -n "$apt_updated" ] || { $sudo apt-get update -qq; apt_updated=1; }
  $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  ln -sf "$(command -v redis-server)" "$bin/redis-server"
}

# The job sandbox (RUNNER_ISOLATION=sandbox, docs/security.md): bubblewrap, slirp4netns and nftables, from
# Debian. Only where they can be used: as root (a runner that is not root cannot sandbox anyway).
ensure_sandbox_tools() {
  [ "$(id -u)" = 0 ] || return 0
  local missing=()
  command -v bwrap >/dev/null || missing+=(bubblewrap)
  command -v slirp4netns >/dev/null || missing+=(slirp4netns)
  command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# The console's browser tests drive Debian's Chromium (playwright-core starts it; no browser download).
ensure_chromium() {
  command -v chromium >/dev/null || apt_install chromium
  ln -sf "$(command -v chromium)" "$bin/chromium"
}

# The API's schema fuzzer (a test tool, from PyPI), in a virtualenv of its own.
ensure_schemathesis() {
  local out="$cache/schemathesis/v$SCHEMATHESIS_VERSION"
  # A virtualenv records its own path, so it is built in place; the marker says it is complete.
  if [ ! -f "$out/.complete" ]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION from PyPI (first time only)"
    rm -rf "$out"
    python3 -m venv "$out"
    "$out/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    touch "$out/.complete"
  fi
  ln -sf "$out/bin/st" "$bin/st"
}

# kustomize, for the offline check of deploy/k8s (a plain module build).
build_kustomize() {
  local out="$cache/kustomize/v$KUSTOMIZE_VERSION"
  [ -x "$out/kustomize" ] && return 0
  log "building kustomize v$KUSTOMIZE_VERSION from the Go module proxy (first time only)"
  local work
  work=$(mktemp -d)
  (
    cd "$work"
    go_env
    go mod init kustomizebuild >/dev/null 2>&1
    # (v5.8.3 needs Go 1.27; the machine has 1.26)
    go get "sigs.k8s.io/kustomize/kustomize/v5@v$KUSTOMIZE_VERSION" 2>&1 | tail -3 >&2
    go build -trimpath -ldflags "-s -w" -o "$work/kustomize" sigs.k8s.io/kustomize/kustomize/v5
  )
  mkdir -p "$out"
  mv "$work/kustomize" "$out/kustomize.tmp" && mv "$out/kustomize.tmp" "$out/kustomize"
  rm -rf "$work"
}

# The Compose Specification's JSON schema, as docker compose itself validates with it (it ships in
# the compose-go module), for the offline check of docker-compose.yml.
fetch_compose_schema() {
  local out="$cache/compose-spec/v$COMPOSE_GO_VERSION"
  [ -f "$out/compose-spec.json" ] && return 0
  log "fetching the compose-spec schema (compose-go v$COMPOSE_GO_VERSION) from the Go module proxy"
  local dir
  dir=$(cd "$(mktemp -d)" && go_env && go mod download -json "github.com/compose-spec/compose-go/v2@v$COMPOSE_GO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$out"
  cp "$dir/schema/compose-spec.json" "$out/compose-spec.json.tmp" && mv "$out/compose-spec.json.tmp" "$out/compose-spec.json"
}

build_pulumi
build_ferretdb
ensure_redis
ensure_chromium
ensure_sandbox_tools
ensure_schemathesis
build_kustomize
fetch_compose_schema

# The Pulumi CLI runs as each job's own uid (RUNNER_ISOLATION=uid), which cannot reach a cache in
# root's home: put the binary itself in .tools/bin (a hard link where the cache is on the same file
# system, else a copy), not a symbolic link into the cache.
place() { rm -f "$2"; ln "$1" "$2" 2>/dev/null || cp "$1" "$2"; }
place "$cache/pulumi/v$PULUMI_VERSION/pulumi" "$bin/pulumi"
ln -sf "$cache/ferretdb/$ferretdb_build/ferretdb" "$bin/ferretdb"
ln -sf "$cache/kustomize/v$KUSTOMIZE_VERSION/kustomize" "$bin/kustomize"
mkdir -p "$root/.tools/share"
ln -sf "$cache/compose-spec/v$COMPOSE_GO_VERSION/compose-spec.json" "$root/.tools/share/compose-spec.json"
# The engine looks for the dynamic-provider plugin next to the real pulumi binary (symlinks
# resolved) and on PATH, and warns when the two differ: keep it beside the binary in .tools/bin. The npm package ships it (so npm ci must have run).
launcher="$root/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"
[ -f "$launcher" ] || { log "run npm ci first: $launcher is missing"; exit 1; }
bundled="$cache/pulumi/v$PULUMI_VERSION/pulumi-resource-pulumi-nodejs"
cmp -s "$launcher" "$bundled" || install -m 0755 "$launcher" "$bundled"
place "$bundled" "$bin/pulumi-resource-pulumi-nodejs"

log "ready in $((SECONDS - started)) s: pulumi $("$bin/pulumi" version), ferretdb $ferretdb_build, $("$bin/redis-server" --version | cut -d' ' -f3), schemathesis $SCHEMATHESIS_VERSION, kustomize v$KUSTOMIZE_VERSION"
