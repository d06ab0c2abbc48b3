#!/usr/bin/env bash
# Make a Docker Engine answer on /var/run/docker.sock for the container tests (tests/carzip, marker
# `docker`). `./dev test` runs this before pytest; CI runs it as root on a fresh Debian machine.
#
#   - a daemon already answers            -> nothing to do (quick, idempotent)
#   - dockerd or busybox missing (root)   -> apt-get update && apt-get install docker.io busybox-static
#   - no daemon                           -> start `dockerd --iptables=false --bridge=none` in the
#                                            background (no registry, no network needed by the tests)
#                                            and wait, bounded, for the socket to answer
#
# If Docker cannot be had, this script FAILS loudly (exit 1): the docker tests must never be skipped
# silently. Set DRTRANSFER_SKIP_DOCKER=1 to opt out on a developer machine; the docker tests then fail.
# Everything is logged to ${DRTRANSFER_DOCKER_LOG:-/tmp/drtransfer-ensure-docker.log}; dockerd's own
# output goes to /tmp/drtransfer-dockerd.log.
set -uo pipefail

LOG="${DRTRANSFER_DOCKER_LOG:-/tmp/drtransfer-ensure-docker.log}"
DAEMON_LOG="${DRTRANSFER_DOCKERD_LOG:-/tmp/drtransfer-dockerd.log}"
SOCK=/var/run/docker.sock
WAIT_SECONDS="${DRTRANSFER_DOCKER_WAIT:-60}"

log() { echo "[ensure-docker $(date +%H:%M:%S)] $*" >>"$LOG"; }
fail() {
    log "FAILED: $*"
    echo "ensure-docker: $* (log: $LOG)" >&2
    exit 1
}

# `docker info` needs the docker CLI; the daemon's HTTP API answers /_ping without it.
daemon_answers() {
    [ -S "$SOCK" ] || return 1
    if command -v curl >/dev/null 2>&1; then
        [ "$(curl -s --max-time 3 --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null)" = "OK" ]
    else
        timeout 5 docker version >/dev/null 2>&1
    fi
}

if [ "${DRTRANSFER_SKIP_DOCKER:-}" = "1" ]; then
    echo "ensure-docker: skipped (DRTRANSFER_SKIP_DOCKER=1); the docker tests will fail" >&2
    exit 0
fi

log "start (uid $(id -u), CI=${CI:-})"

if daemon_answers && command -v busybox >/dev/null 2>&1; then
    log "a Docker daemon already answers on $SOCK"
    echo "ensure-docker: Docker Engine answers on $SOCK"
    exit 0
fi

# ---- packages -------------------------------------------------------------------------------------
packages=()
if ! command -v dockerd >/dev/null 2>&1 && ! daemon_answers; then packages+=(docker.io); fi
if ! command -v busybox >/dev/null 2>&1; then packages+=(busybox-static); fi
if [ "${#packages[@]}" -gt 0 ]; then
    [ "$(id -u)" = "0" ] || fail "${packages[*]} missing and this is not root; install them with apt-get"
    command -v apt-get >/dev/null 2>&1 || fail "${packages[*]} missing and apt-get is unavailable"
    log "installing ${packages[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >>"$LOG" 2>&1 || fail "apt-get update failed"
    # No recommends: dockerd, containerd and runc are all the tests need.
    apt-get install -y --no-install-recommends "${packages[@]}" >>"$LOG" 2>&1 \
        || fail "apt-get install ${packages[*]} failed"
    hash -r
    command -v busybox >/dev/null 2>&1 || fail "busybox is still missing after installing busybox-static"
fi

# ---- daemon ---------------------------------------------------------------------------------------
if ! daemon_answers; then
    [ "$(id -u)" = "0" ] || fail "no Docker daemon answers on $SOCK and only root can start one"
    command -v dockerd >/dev/null 2>&1 || fail "dockerd is missing; install docker.io"
    if command -v pgrep >/dev/null 2>&1 && pgrep -x dockerd >/dev/null 2>&1; then
        log "a dockerd process exists but does not answer yet; waiting for it"
    else
        # A socket left by a dead daemon makes the new one refuse to start.
        [ -S "$SOCK" ] && rm -f "$SOCK"
        log "starting dockerd --iptables=false --bridge=none (output in $DAEMON_LOG)"
        nohup setsid dockerd --iptables=false --bridge=none >>"$DAEMON_LOG" 2>&1 </dev/null &
        log "dockerd pid $!"
    fi
    deadline=$((SECONDS + WAIT_SECONDS))
    until daemon_answers; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$DAEMON_LOG" >>"$LOG" 2>/dev/null
            fail "dockerd did not answer on $SOCK within ${WAIT_SECONDS}s (see $DAEMON_LOG)"
        fi
        sleep 0.5
    done
fi

log "Docker daemon answers on $SOCK"
echo "ensure-docker: Docker Engine answers on $SOCK"
