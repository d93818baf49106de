#!/usr/bin/env bash
# Stop what start-slurm.sh started, by PID file, and remove the PID files
# (a stale /run/slurmctld.pid makes a later package removal fail).
set -u
stop() {  # stop PIDFILE
  [ -s "$1" ] || { rm -f "$1"; return; }
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$1"
}
stop /run/slurmd.pid
stop /run/slurmctld.pid
stop /run/slurmdbd.pid
mariadb-admin shutdown 2>/dev/null || true
stop /run/munge/munged.pid
echo "SLURM stopped"
