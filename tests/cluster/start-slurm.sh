#!/usr/bin/env bash
# Install, configure and start a single-node SLURM with accounting on this machine,
# as root, without systemd: munge, MariaDB + slurmdbd (so that sacct works),
# slurmctld and slurmd. Idempotent: a running daemon is left alone.
# Usage: sudo tests/cluster/start-slurm.sh     Stop: tests/cluster/stop-slurm.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "start-slurm.sh: must run as root" >&2; exit 1; }

host=$(hostname -s)
log=/var/log/slurm
export DEBIAN_FRONTEND=noninteractive

if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq munge slurmctld slurmd slurm-client slurmdbd mariadb-server >/dev/null
fi

# slurmctld and slurmd find this node by its short host name.
getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
mkdir -p "$log" /var/spool/slurmctld /var/spool/slurmd /etc/slurm /run/munge
chown slurm:slurm "$log" /var/spool/slurmctld

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "start-slurm.sh: $what did not come up within ${seconds}s" >&2; return 1
}

# munge: the authentication every SLURM daemon and client uses.
[ -s /etc/munge/munge.key ] || mungekey --create
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- munged
fi
wait_for 20 munged sh -c 'munge -n | unmunge'

# MariaDB for slurmdbd's accounting database.
if ! mariadb-admin ping >/dev/null 2>&1; then
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  setsid mariadbd --user=mysql >/var/log/mysql-poolup.log 2>&1 < /dev/null &
fi
wait_for 60 MariaDB mariadb-admin ping
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'poolup-slurm';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=poolup-slurm
StorageLoc=slurm_acct_db
PidFile=/run/slurmdbd.pid
LogFile=$log/slurmdbd.log
CONF
chown slurm:slurm /etc/slurm/slurmdbd.conf
chmod 600 /etc/slurm/slurmdbd.conf

# The node: all CPUs, memory about 1 GB under what slurmd sees (else the node drains).
cpus=$(nproc)
memory=$(( $(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') - 1024 ))
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=poolup
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$log/slurmctld.log
SlurmdLogFile=$log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job that names no memory takes the whole node's.
DefMemPerCPU=500
ReturnToService=2
MailProg=/bin/true
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

if [ ! -s /run/slurmdbd.pid ] || ! kill -0 "$(cat /run/slurmdbd.pid)" 2>/dev/null; then slurmdbd; fi
wait_for 30 slurmdbd sacctmgr -n list cluster
sacctmgr -i add cluster poolup >/dev/null 2>&1 || true
if [ ! -s /run/slurmctld.pid ] || ! kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null; then slurmctld; fi
if [ ! -s /run/slurmd.pid ] || ! kill -0 "$(cat /run/slurmd.pid)" 2>/dev/null; then slurmd; fi
wait_for 60 "node $host (idle)" sh -c "sinfo -h -N -o '%T' | grep -qx idle"
wait_for 30 "sacct" sacct -n -X
echo "SLURM is up: $(sinfo -h -o '%P %D %T %C')"
