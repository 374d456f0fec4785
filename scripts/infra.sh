#!/usr/bin/env bash
# The local infrastructure gen's builds and tests use: Debian's container tools, a CNCF
# distribution registry on 127.0.0.1:5000 and a Docker engine. Idempotent; it prints what it
# started and how to stop it. Nothing is killed by name: every process is stopped by its PID.
#
#   bash scripts/infra.sh install      install the Debian packages that are missing
#   bash scripts/infra.sh up [--no-docker]   install, then start the registry (and dockerd)
#   bash scripts/infra.sh env          print `export` lines for DOCKER_HOST, GEN_REGISTRY, ...
#   bash scripts/infra.sh status       what runs, with PIDs
#   bash scripts/infra.sh down         stop what `up` started (by PID), remove its bridge
#
# State lives in ${GEN_INFRA:-<repo>/.gen/infra}: registry config + storage, dockerd data root,
# sockets, PID files and logs.
#  - The registry gets its own config (127.0.0.1 only, no auth, deletes enabled); Debian's
#    default /etc/docker/registry/config.yml (all interfaces, htpasswd) is never used. If a
#    registry already answers on the port, it is reused and not stopped by `down`.
#  - dockerd: when a Docker engine already answers on DOCKER_HOST or /var/run/docker.sock it
#    is used as it is; otherwise we start our own with its own data root, exec root, socket,
#    PID file and bridge (gen0, 10.239.0.1/24, no iptables rules: builds and tests run with
#    the network off, and nothing of another daemon is touched).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$(realpath -m "${GEN_INFRA:-$REPO/.gen/infra}")"
REG_ADDR="${GEN_REGISTRY:-127.0.0.1:5000}"
REG_DIR="$STATE/registry"
DK_DIR="$STATE/docker"
DK_SOCK="$DK_DIR/docker.sock"
BRIDGE="${GEN_BRIDGE:-gen0}"
BRIDGE_CIDR="${GEN_BRIDGE_CIDR:-10.239.0.1/24}"
PACKAGES=(docker.io buildah podman skopeo docker-registry mmdebstrap uidmap netavark
          fuse-overlayfs iptables iproute2 git curl ca-certificates)

log() { printf '[infra] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { cat "$1" 2>/dev/null || true; }
registry_ok() { curl -fsS -m 2 -o /dev/null "http://$REG_ADDR/v2/" 2>/dev/null; }
docker_ok() { DOCKER_HOST="$1" /usr/bin/docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

install() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then log "Debian packages: all present"; return; fi
    [ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]} (fix: run as root or install them)"
    log "installing: ${missing[*]}"
    local t0=$SECONDS
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >"$STATE/apt-install.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$STATE/apt-install.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >>"$STATE/apt-install.log" 2>&1 \
            || { tail -20 "$STATE/apt-install.log" >&2; die "apt-get install failed"; }
    fi
    log "installed in $((SECONDS - t0))s"
}

registry_up() {
    local pid; pid="$(pid_of "$REG_DIR/registry.pid")"
    if alive "$pid" && registry_ok; then log "registry: running at http://$REG_ADDR (pid $pid)"; return; fi
    if registry_ok; then
        log "registry: one already answers at http://$REG_ADDR (not ours; reusing it, never stopping it)"
        return
    fi
    mkdir -p "$REG_DIR/data"
    cat >"$REG_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: $REG_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    nohup docker-registry serve "$REG_DIR/config.yml" >"$REG_DIR/registry.log" 2>&1 &
    echo $! >"$REG_DIR/registry.pid"
    for _ in $(seq 1 100); do registry_ok && break; sleep 0.1; done
    registry_ok || { tail -20 "$REG_DIR/registry.log" >&2; die "registry did not come up on $REG_ADDR"; }
    log "registry: started at http://$REG_ADDR (pid $(cat "$REG_DIR/registry.pid"); stop: bash scripts/infra.sh down)"
}

docker_host() {
    # The engine gen uses: ours if it runs, else one that already answers, else ours (to start).
    local pid; pid="$(pid_of "$DK_DIR/docker.pid")"
    if alive "$pid" && [ -S "$DK_SOCK" ]; then echo "unix://$DK_SOCK"; return; fi
    if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "unix://$DK_SOCK" ] && docker_ok "$DOCKER_HOST"; then
        echo "$DOCKER_HOST"; return
    fi
    if docker_ok unix:///var/run/docker.sock; then echo "unix:///var/run/docker.sock"; return; fi
    echo "unix://$DK_SOCK"
}

docker_up() {
    local host; host="$(docker_host)"
    if [ "$host" != "unix://$DK_SOCK" ]; then log "docker: using the engine already at $host"; return; fi
    local pid; pid="$(pid_of "$DK_DIR/docker.pid")"
    if alive "$pid" && docker_ok "$host"; then log "docker: running at $host (pid $pid)"; return; fi
    [ "$(id -u)" = 0 ] || die "need root to start dockerd (fix: run as root, or export DOCKER_HOST of a running engine)"
    mkdir -p "$DK_DIR/root" "$DK_DIR/exec"
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
        ip link set "$BRIDGE" up
        echo "$BRIDGE" >"$DK_DIR/bridge.created"
    fi
    nohup dockerd --data-root "$DK_DIR/root" --exec-root "$DK_DIR/exec" \
        --host "unix://$DK_SOCK" --pidfile "$DK_DIR/docker.pid" \
        --bridge "$BRIDGE" --iptables=false --ip6tables=false --ip-masq=false \
        --storage-driver overlay2 --insecure-registry "$REG_ADDR" \
        >"$DK_DIR/dockerd.log" 2>&1 &
    echo $! >"$DK_DIR/dockerd.launcher.pid"
    for _ in $(seq 1 300); do docker_ok "unix://$DK_SOCK" && break; sleep 0.1; done
    docker_ok "unix://$DK_SOCK" || { tail -30 "$DK_DIR/dockerd.log" >&2; die "dockerd did not start"; }
    log "docker: started dockerd $(DOCKER_HOST=unix://$DK_SOCK /usr/bin/docker version --format '{{.Server.Version}}') at unix://$DK_SOCK (pid $(cat "$DK_DIR/docker.pid"); stop: bash scripts/infra.sh down)"
}

stop_pid() {  # stop_pid NAME PIDFILE: TERM, wait up to 20 s, then KILL; all by PID
    local name="$1" file="$2" pid; pid="$(pid_of "$file")"
    if ! alive "$pid"; then rm -f "$file"; return; fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$file"
    log "$name: stopped (pid $pid)"
}

down() {
    if [ -f "$DK_DIR/docker.pid" ]; then
        # containers we may have left behind (validate kills its own; this is a safety net)
        if docker_ok "unix://$DK_SOCK"; then
            ids="$(DOCKER_HOST=unix://$DK_SOCK /usr/bin/docker ps -q 2>/dev/null || true)"
            [ -z "$ids" ] || DOCKER_HOST=unix://$DK_SOCK /usr/bin/docker rm -f $ids >/dev/null 2>&1 || true
        fi
        stop_pid dockerd "$DK_DIR/docker.pid"
    fi
    rm -f "$DK_DIR/dockerd.launcher.pid"
    if [ -f "$DK_DIR/bridge.created" ]; then
        ip link del "$(cat "$DK_DIR/bridge.created")" 2>/dev/null || true
        rm -f "$DK_DIR/bridge.created"
    fi
    stop_pid registry "$REG_DIR/registry.pid"
}

print_env() {
    echo "export GEN_REGISTRY=$REG_ADDR"
    echo "export DOCKER_HOST=$(docker_host)"
    echo "export GEN_INFRA=$STATE"
}

status() {
    local rp dp; rp="$(pid_of "$REG_DIR/registry.pid")"; dp="$(pid_of "$DK_DIR/docker.pid")"
    if registry_ok; then echo "registry: up at $REG_ADDR ${rp:+(pid $rp)}"; else echo "registry: down"; fi
    local host; host="$(docker_host)"
    if docker_ok "$host"; then echo "docker: up at $host ${dp:+(pid $dp)}"; else echo "docker: down"; fi
}

mkdir -p "$STATE"
cmd="${1:-up}"; shift || true
case "$cmd" in
    install) install ;;
    up)
        install
        registry_up
        if [ "${1:-}" != "--no-docker" ]; then docker_up; fi
        ;;
    down) down ;;
    env) print_env ;;
    status) status ;;
    *) die "unknown command '$cmd' (use: install | up [--no-docker] | env | status | down)" ;;
esac
