#!/bin/bash
# A real single-node SLURM on this machine, for testing the job scripts: install | start | stop | status.
#
#   sudo jobs/slurm/local-cluster.sh install   # Debian: apt-get install slurm-wlm munge (if missing)
#   sudo jobs/slurm/local-cluster.sh start     # munged, slurmctld, slurmd; prints the SLURM_CONF to export
#   export SLURM_CONF=/var/tmp/mpidrl-slurm/slurm.conf
#   sbatch ...; squeue; sacct is not configured (no accounting daemon)
#   sudo jobs/slurm/local-cluster.sh stop      # stops, by pid, the daemons `start` started
#   jobs/slurm/local-cluster.sh status         # each daemon: running, dead (started here, gone) or not started
#
# install, start and stop need root (run as root, or with sudo: the daemons run as root, munged as the
# munge user). `start` says "up" only if every daemon it started is still alive once the node is idle;
# `status` exits 1 if a daemon started here has died. Everything the cluster writes lives in
# MPIDRL_SLURM_DIR (default /var/tmp/mpidrl-slurm): its own slurm.conf (so an existing /etc/slurm is left
# alone), state, spool, logs and pid files. The node is this machine with the CPUs and memory `slurmd -C`
# reports; one partition "debug" that allows oversubscription, so jobs can ask for more tasks than cores
# with `sbatch --overcommit`. A munged already running is used as it is and is not stopped by `stop`.
set -euo pipefail

DIR=${MPIDRL_SLURM_DIR:-/var/tmp/mpidrl-slurm}
CONF=$DIR/slurm.conf
CTLD_PORT=${MPIDRL_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${MPIDRL_SLURMD_PORT:-6818}
MUNGE_SOCKET=/run/munge/munge.socket.2
HOST=$(hostname -s)

die() { echo "local-cluster: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (the SLURM daemons and munged need it)"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return 0
    fi
    need_root
    command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and this is not a Debian-like system"
    echo "local-cluster: installing slurm-wlm and munge with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0 # a working munged is already there
    fi
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 700 /etc/munge
    chmod 400 /etc/munge/munge.key
    rm -f /run/munge/munged.pid
    # Daemons get no stdio: a caller capturing this script's output would otherwise wait for them.
    su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=/run/munge/munged.pid" </dev/null >/dev/null 2>&1
    for _ in $(seq 50); do
        if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
            cp /run/munge/munged.pid "$DIR/munged.pid" # remember that this script started it
            echo munged >>"$DIR/started"
            return 0
        fi
        sleep 0.1
    done
    die "munged did not come up"
}

write_conf() {
    # The node line as slurmd sees the hardware, so the node is not drained for a mismatch. Addresses are
    # given as 127.0.0.1 so that nothing depends on the host name resolving (containers, CI machines).
    local node
    node=$(slurmd -C | head -n 1)
    local memory
    memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    node=$(sed "s/RealMemory=[0-9]*/RealMemory=$((memory * 9 / 10))/" <<<"$node")
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF" <<EOF
# Written by jobs/slurm/local-cluster.sh: a single-node test cluster.
ClusterName=mpidrl-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
}

start() {
    need_root
    install
    mkdir -p "$DIR"
    if alive "$DIR/slurmctld.pid" || alive "$DIR/slurmd.pid"; then
        die "already running (pids in $DIR); run '$0 stop' first"
    fi
    rm -f "$DIR/started" # the daemons this start starts, one name a line: status reports them dead if gone
    start_munge
    write_conf
    # -c: a clean start, forgetting jobs of an earlier test cluster.
    slurmctld -c -f "$CONF" </dev/null >/dev/null 2>&1
    echo slurmctld >>"$DIR/started"
    slurmd -f "$CONF" </dev/null >/dev/null 2>&1
    echo slurmd >>"$DIR/started"
    export SLURM_CONF=$CONF
    local idle=0
    for _ in $(seq 100); do
        if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
            idle=1
            break
        fi
        [ -z "$(dead)" ] || break # a daemon died while starting: no use waiting
        sleep 0.2
    done
    [ "$idle" = 0 ] || sleep 1 # a daemon that dies right after registering dies within this second
    local gone
    gone=$(dead)
    if [ "$idle" = 1 ] && [ -z "$gone" ]; then
        echo "local-cluster: up (node $HOST idle; munged, slurmctld, slurmd alive); export SLURM_CONF=$CONF" >&2
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    sinfo >&2 || true
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    [ -z "$gone" ] || die "dead after starting:$gone (logs above); run '$0 stop' before starting again"
    die "the node did not become idle within 20 s (logs above)"
}

# The daemons `start` started whose process is gone, or nothing.
dead() {
    local name
    for name in munged slurmctld slurmd; do
        if grep -qx "$name" "$DIR/started" 2>/dev/null && ! alive "$DIR/$name.pid"; then printf ' %s' "$name"; fi
    done
}

stop() {
    need_root
    # Only what `start` started (their pid files); all are signalled first, then awaited.
    local name pids=()
    for name in slurmd slurmctld munged; do
        if alive "$DIR/$name.pid"; then
            pids+=("$(cat "$DIR/$name.pid")")
            kill "${pids[-1]}"
        fi
        rm -f "$DIR/$name.pid"
    done
    rm -f "$DIR/started"
    local pid
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    echo "local-cluster: stopped" >&2
}

status() {
    local name state=0
    for name in munged slurmctld slurmd; do
        if alive "$DIR/$name.pid"; then
            echo "$name: running (pid $(cat "$DIR/$name.pid"))"
        elif grep -qx "$name" "$DIR/started" 2>/dev/null; then
            echo "$name: dead (started here, its process is gone; logs in $DIR/log; '$0 stop', then start again)"
            state=1
        else
            echo "$name: not started here"
        fi
    done
    # sinfo would retry for seconds against a controller that is not there
    if alive "$DIR/slurmctld.pid"; then SLURM_CONF=$CONF sinfo 2>/dev/null || true; fi
    return "$state"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 install|start|stop|status" ;;
esac
