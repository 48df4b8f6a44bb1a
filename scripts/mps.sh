#!/usr/bin/env bash
# Start, stop or show the NVIDIA MPS control daemon for ekya's ray runtime, as the current user.
#
#   scripts/mps.sh start | stop | status
#
# The daemon's pipe and log directories live under the project directory, $EKYA_MPS_DIR
# (default: ./.ekya/mps, i.e. .ekya/mps/pipe and .ekya/mps/log), never the system-wide
# /tmp/nvidia-mps, so only processes given CUDA_MPS_PIPE_DIRECTORY (the ray runtime's actors)
# become MPS clients. Needs no root and never changes the GPU's compute mode (DEFAULT mode works;
# other, non-MPS processes can then still use the GPU). The daemon starts with CUDA_VISIBLE_DEVICES
# unset, so the GPU index an actor is given means the physical GPU. `stop` is always safe: it asks
# the daemon to quit (never a signal, which could hang clients mid-kernel) and succeeds when none runs.
set -u

ROOT="${EKYA_MPS_DIR:-$PWD/.ekya/mps}"
case "$ROOT" in /*) ;; *) ROOT="$PWD/$ROOT" ;; esac
PIPE="$ROOT/pipe"
LOG="$ROOT/log"
PIDFILE="$PIPE/nvidia-cuda-mps-control.pid"
CONTROL="nvidia-cuda-mps-control"
# seconds `stop` waits for the daemon to exit after `quit`
STOP_WAIT="${EKYA_MPS_STOP_WAIT:-20}"

die() { echo "mps.sh: $*" >&2; exit 2; }

daemon_pid() {
    # the daemon's pid if it runs on this pipe directory, else nothing
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(tr -dc '0-9' < "$PIDFILE")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

control() {
    # talk to the daemon of this pipe directory
    CUDA_MPS_PIPE_DIRECTORY="$PIPE" CUDA_MPS_LOG_DIRECTORY="$LOG" "$CONTROL" "$@"
}

print_env() {
    echo "export CUDA_MPS_PIPE_DIRECTORY=$PIPE"
    echo "export CUDA_MPS_LOG_DIRECTORY=$LOG"
}

start() {
    local pid
    command -v "$CONTROL" >/dev/null 2>&1 \
        || die "$CONTROL not found on PATH: install the NVIDIA driver's MPS tools (or run without MPS: shares are then not enforced on the GPU)"
    if pid="$(daemon_pid)"; then
        echo "mps.sh: already running (pid $pid) on $PIPE"
        print_env
        return 0
    fi
    mkdir -p "$PIPE" "$LOG" || die "cannot create $PIPE and $LOG; set EKYA_MPS_DIR to a writable directory"
    # MPS needs many file descriptors (too few: 'failed to create/open SHM segment'); raise the soft limit if allowed
    local want=16384 have
    have="$(ulimit -n)"
    if [ "$have" != unlimited ] && [ "$have" -lt "$want" ]; then
        ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
        [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ] \
            && echo "mps.sh: warning: open-file limit is $(ulimit -n) (< $want); MPS clients may fail to create SHM segments" >&2
    fi
    env -u CUDA_VISIBLE_DEVICES CUDA_MPS_PIPE_DIRECTORY="$PIPE" CUDA_MPS_LOG_DIRECTORY="$LOG" "$CONTROL" -d \
        || die "$CONTROL -d failed; see $LOG/control.log"
    local i
    for i in $(seq 50); do
        daemon_pid >/dev/null && break
        sleep 0.1
    done
    pid="$(daemon_pid)" || die "the daemon did not come up; see $LOG/control.log"
    echo "mps.sh: started (pid $pid); clients need:"
    print_env
}

stop() {
    local pid
    if ! pid="$(daemon_pid)"; then
        echo "mps.sh: not running on $PIPE"
        return 0
    fi
    command -v "$CONTROL" >/dev/null 2>&1 || die "$CONTROL not found on PATH, but a daemon (pid $pid) runs on $PIPE"
    echo quit | control >/dev/null 2>&1 || true
    local i
    for i in $(seq $((STOP_WAIT * 10))); do
        kill -0 "$pid" 2>/dev/null || { echo "mps.sh: stopped"; return 0; }
        sleep 0.1
    done
    # quit waits for clients to finish; a signal here could hang them, so say what holds it instead
    echo "mps.sh: the daemon (pid $pid) has not exited after ${STOP_WAIT}s: MPS clients still run;" \
         "end them gracefully and run 'scripts/mps.sh stop' again (clients: echo get_server_list | CUDA_MPS_PIPE_DIRECTORY=$PIPE $CONTROL)" >&2
    return 1
}

status() {
    local pid
    if pid="$(daemon_pid)"; then
        echo "mps.sh: running (pid $pid) on $PIPE, logs in $LOG"
        print_env
        local servers
        servers="$(echo get_server_list | control 2>/dev/null)"
        echo "servers: ${servers:-none}"
    else
        echo "mps.sh: not running on $PIPE"
    fi
    return 0
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: scripts/mps.sh start|stop|status   (directories under \$EKYA_MPS_DIR, default ./.ekya/mps)" >&2; exit 2 ;;
esac
