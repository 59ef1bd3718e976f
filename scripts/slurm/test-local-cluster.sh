#!/usr/bin/env bash
# Test the Slurm scripts on a one-node Slurm cluster started here, as root (Debian 12).
#
#   scripts/slurm/test-local-cluster.sh [--cluster-only]
#
# Installs slurm-wlm and munge with apt-get when missing, then starts a private munged
# (own key and socket), slurmctld and slurmd on ports 16817/16818 (CLIPSHIFT_TEST_PORT
# moves them), all in a temporary directory, with SLURM_CONF pointing at it; nothing
# under /etc or /run is changed. The EXIT trap cancels the test's jobs, stops exactly
# the daemons it started and removes the directory (CLIPSHIFT_TEST_KEEP=1 keeps it).
#
# --cluster-only (needs no Rust build): a 3-task array plus an afterok job writing
#   files; then submit.sh with stub binaries (exit status 3 must count as success, and
#   a failing shard must fail its task and cancel the report).
# default: submit.sh on the real binaries (CLIPSHIFT_BIN, default <repo>/target/debug),
#   data/samples, models/tiny-clip and its random SAE with 3 shards, then the same
#   stages unsharded, and `cargo xtask compare` of the two runs. Needs ORT_DYLIB_PATH.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mode=full
case ${1:-} in
    "") ;;
    --cluster-only) mode=cluster-only ;;
    -h | --help)
        sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 [--cluster-only]" >&2
        exit 2
        ;;
esac

t0=$(date +%s)
say() { echo "[test-local-cluster $(($(date +%s) - t0))s] $*"; }
die() {
    echo "test-local-cluster: FAIL: $*" >&2
    exit 1
}

((EUID == 0)) || die "must run as root (it starts slurmctld, slurmd and munged)"
if [[ $mode == full ]]; then
    [[ -n ${ORT_DYLIB_PATH:-} ]] || die "ORT_DYLIB_PATH is not set; point it at libonnxruntime.so (e.g. the one \`cargo xtask fetch-runtime\` puts under $repo/.cache/onnxruntime)"
    [[ -f $ORT_DYLIB_PATH ]] || die "ORT_DYLIB_PATH=$ORT_DYLIB_PATH is not a file"
    # The jobs run in other directories: an absolute path.
    ORT_DYLIB_PATH=$(realpath -e -- "$ORT_DYLIB_PATH")
    export ORT_DYLIB_PATH
    bin=$(realpath -e -- "${CLIPSHIFT_BIN:-$repo/target/debug}") || die "CLIPSHIFT_BIN (${CLIPSHIFT_BIN:-$repo/target/debug}) does not exist: build first (cargo build --workspace)"
    for stage in augment encode metrics fused text sae report; do
        [[ -x $bin/clipshift-$stage ]] || die "$bin/clipshift-$stage is missing: build first (cargo build --workspace)"
    done
    command -v cargo >/dev/null || die "cargo not found (needed for \`cargo xtask compare\`)"
fi

# --- install -------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sbatch >/dev/null; then
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt_log=$(mktemp)
    { apt-get update -qq && apt-get install -y -qq slurm-wlm munge; } >"$apt_log" 2>&1 \
        || { cat "$apt_log" >&2; rm -f "$apt_log"; die "apt-get could not install slurm-wlm and munge"; }
    rm -f "$apt_log"
    say "installed"
fi
id munge >/dev/null 2>&1 || die "there is no munge user (the munge package creates it)"

# --- temporary directory and teardown --------------------------------------------------
port=${CLIPSHIFT_TEST_PORT:-16817}
host=$(hostname -s)
# /tmp and 755: munged insists that every directory above its socket is searchable by all.
tmp=$(mktemp -d /tmp/clipshift-slurm.XXXXXX)
chmod 755 "$tmp"
munged_pid='' slurmctld_pid='' slurmd_pid=''
jobs_submitted=()
export SLURM_CONF=$tmp/slurm.conf

stop_pid() { # name pid: TERM, wait up to 10 s, then KILL
    local name=$1 pid=$2 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "test-local-cluster: $name ($pid) ignored SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    trap '' INT TERM # a second signal must not cut the teardown short
    if ((${#jobs_submitted[@]} > 0)) && [[ -n $slurmctld_pid ]] && kill -0 "$slurmctld_pid" 2>/dev/null; then
        local ids
        ids=$(IFS=,; echo "${jobs_submitted[*]}")
        if [[ -n $(squeue -h -j "$ids" -o %i 2>/dev/null) ]]; then
            scancel "${jobs_submitted[@]}" 2>/dev/null
            for ((i = 0; i < 50; i++)); do
                [[ -z $(squeue -h -j "$ids" -o %i 2>/dev/null) ]] && break
                sleep 0.2
            done
        fi
    fi
    stop_pid slurmd "$slurmd_pid"
    stop_pid slurmctld "$slurmctld_pid"
    stop_pid munged "$munged_pid"
    if [[ ${CLIPSHIFT_TEST_KEEP:-} == 1 ]]; then
        echo "test-local-cluster: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_logs() {
    local f
    for f in "$tmp"/log/*.log "$@"; do
        [[ -f $f ]] || continue
        echo "----- tail of $f" >&2
        tail -n 40 "$f" >&2
    done
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$port" $((port + 1)); do
    port_in_use "$p" && die "port $p is in use (a Slurm daemon left running?); set CLIPSHIFT_TEST_PORT to another port"
done

# --- munge: a private daemon with its own key and socket --------------------------------
mkdir -p "$tmp/munge" "$tmp/log" "$tmp/state" "$tmp/spool"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$tmp/munge"
chmod 711 "$tmp/munge"
chmod 400 "$tmp/munge/munge.key"
socket=$tmp/munge/munge.socket
runuser -u munge -- /usr/sbin/munged --socket="$socket" --key-file="$tmp/munge/munge.key" \
    --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" --seed-file="$tmp/munge/munged.seed" \
    || { cat "$tmp/munge/munged.log" >&2; die "munged did not start"; }
munged_pid=$(cat "$tmp/munge/munged.pid")
munge -S "$socket" -n | unmunge -S "$socket" >/dev/null || die "munge does not work (see above)"

# --- slurm.conf --------------------------------------------------------------------------
# Gotchas: SlurmctldHost/NodeAddr name 127.0.0.1 so the short hostname need not resolve;
# AuthInfo points both auth/munge and cred/munge at the private munged; MinJobAge keeps
# finished jobs in `scontrol show job` (there is no slurmdbd, so no sacct).
cat >"$SLURM_CONF" <<EOF
ClusterName=clipshift-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=kill_invalid_depend,batch_sched_delay=0
ReturnToService=2
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=2000 State=UNKNOWN
PartitionName=debug Default=YES Nodes=ALL MaxTime=INFINITE State=UP
EOF

# --- slurmctld, slurmd ------------------------------------------------------------------
# In the foreground (-D) and in the background here, so $! is the daemon itself.
slurmctld -D -f "$SLURM_CONF" >"$tmp/log/slurmctld.stderr" 2>&1 &
slurmctld_pid=$!
slurmd -D -f "$SLURM_CONF" -N "$host" >"$tmp/log/slurmd.stderr" 2>&1 &
slurmd_pid=$!
state=
for ((i = 0; i < 300; i++)); do
    kill -0 "$slurmctld_pid" 2>/dev/null || { show_logs "$tmp/log/slurmctld.stderr"; die "slurmctld exited"; }
    kill -0 "$slurmd_pid" 2>/dev/null || { show_logs "$tmp/log/slurmd.stderr"; die "slurmd exited"; }
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 0.1
done
[[ $state == idle ]] || { show_logs; die "node $host is not idle after 30 s (state '${state:-unknown}')"; }
say "cluster up: node $host idle, $(nproc) CPUs (SLURM_CONF=$SLURM_CONF)"

# --- helpers -----------------------------------------------------------------------------
wait_jobs() { # timeout_s id...: until the jobs leave the queue
    local timeout=$1 ids
    shift
    ids=$(IFS=,; echo "$*")
    local deadline=$(($(date +%s) + timeout)) out
    while :; do
        out=$(squeue -h -j "$ids" -o '%i %T %r' 2>&1) || die "squeue failed: $out"
        [[ -z $out ]] && return 0
        (($(date +%s) < deadline)) || { echo "$out" >&2; show_logs "$tmp"/out/*.out; die "jobs $ids still queued after ${timeout}s"; }
        sleep 0.5
    done
}

job_states() { # id: "JobState" of the job, one line per array task
    scontrol -o show job "$1" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2
}

expect_states() { # id count state: all `count` tasks of job `id` in `state`
    local id=$1 count=$2 want=$3 states
    states=$(job_states "$id")
    if [[ $(grep -c . <<<"$states") != "$count" ]] || grep -qv "^$want\$" <<<"$states"; then
        show_logs "$tmp"/out/*.out
        die "job $id: expected $count x $want, got: $(tr '\n' ' ' <<<"$states")"
    fi
}

mkdir -p "$tmp/out"

if [[ $mode == cluster-only ]]; then
    # --- a trivial array and a dependent job ---------------------------------------------
    array=$(sbatch --parsable --array=0-2 --chdir="$tmp/out" -J trivial --output='%x-%A_%a.out' \
        --wrap="echo \$SLURM_ARRAY_TASK_ID/\$SLURM_ARRAY_TASK_COUNT > '$tmp/out/task-'\$SLURM_ARRAY_TASK_ID")
    jobs_submitted+=("$array")
    after=$(sbatch --parsable --dependency="afterok:$array" --chdir="$tmp/out" -J after --output='%x-%j.out' \
        --wrap="cat '$tmp'/out/task-* > '$tmp/out/after'")
    jobs_submitted+=("$after")
    wait_jobs 60 "$array" "$after"
    expect_states "$array" 3 COMPLETED
    expect_states "$after" 1 COMPLETED
    for f in task-0 task-1 task-2 after; do
        [[ -s $tmp/out/$f ]] || die "job output $tmp/out/$f is missing"
    done
    [[ $(tr '\n' ' ' <"$tmp/out/after") == "0/3 1/3 2/3 " ]] || die "unexpected task outputs: $(cat "$tmp/out/after")"
    say "array + afterok job: COMPLETED, 4 files written"

    # --- submit.sh on stub binaries ------------------------------------------------------
    # Each stub logs its arguments; fused (augment + encode + metrics) of shard 1 exits 3 (must count as success);
    # CLIPSHIFT_STUB_FAIL=stage:K makes that stage of shard K exit 1.
    stubs=$tmp/stubs
    mkdir -p "$stubs" "$tmp/data" "$tmp/model"
    cat >"$stubs/stub" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
stage=${0##*/clipshift-}
run= shard=whole
args=("$@")
while (($# > 0)); do
    case $1 in
        --run) run=$2; shift 2 ;;
        --shard) shard=$2; shift 2 ;;
        *) shift ;;
    esac
done
mkdir -p "$run"
echo "$stage ${args[*]}" >>"$run/calls.$stage.${shard%/*}"
if [[ $stage == text || $stage == sae || $stage == report ]]; then
    for f in "$run"/done.fused.*; do [[ -e $f ]] || { echo "no shards" >&2; exit 1; }; done
fi
if [[ $stage == sae ]]; then
    [[ -e $run/done.text.whole ]] || { echo "sae before text" >&2; exit 1; }
fi
if [[ $stage == report ]]; then
    [[ -e $run/done.text.whole ]] || { echo "report before text" >&2; exit 1; }
    mkdir -p "$run/report"; ls "$run" >"$run/report/index.html"; exit 0
fi
[[ ${CLIPSHIFT_STUB_FAIL:-} == "$stage:${shard%/*}" ]] && { echo "stub failure" >&2; exit 1; }
touch "$run/done.$stage.${shard%/*}"
[[ $stage == fused && $shard == 1/* ]] && exit 3
exit 0
EOF
    chmod +x "$stubs/stub"
    for stage in fused text sae report; do ln -s stub "$stubs/clipshift-$stage"; done
    touch "$tmp/sae.safetensors"

    ids=$(cd / && "$here/submit.sh" --run "$tmp/runs/stub" --data "$tmp/data" --model "$tmp/model" --shards 3 \
        --bin "$stubs" --seed 7 --floor --device cpu --sae "$tmp/sae.safetensors" -- --chdir="$tmp/out")
    echo "$ids"
    array=$(awk '/^shards:/ {print $4}' <<<"$ids")
    report=$(awk '/^report:/ {print $3}' <<<"$ids")
    jobs_submitted+=("$array" "$report")
    wait_jobs 60 "$array" "$report"
    expect_states "$array" 3 COMPLETED
    expect_states "$report" 1 COMPLETED
    run=$tmp/runs/stub
    for k in 0 1 2; do
        [[ -e $run/done.fused.$k ]] || die "stub fused did not run for shard $k"
        grep -qx "fused --run $run --data $tmp/data --shard $k/3 --seed 7 --floor --model $tmp/model --device cpu" \
            "$run/calls.fused.$k" || die "unexpected fused call: $(cat "$run/calls.fused.$k")"
    done
    [[ -e $run/done.text.whole ]] || die "stub text did not run"
    grep -qx "sae --run $run --sae $tmp/sae.safetensors --device cpu" "$run/calls.sae.whole" \
        || die "unexpected sae call: $(cat "$run/calls.sae.whole" 2>/dev/null)"
    [[ -s $run/report/index.html ]] || die "stub report did not run"
    # The stub report lists the run directory: the SAE stage finished before it.
    grep -qx done.sae.whole "$run/report/index.html" || die "the report ran before the SAE stage"
    say "submit.sh with stubs: 3 shards + text, sae, report COMPLETED (exit status 3 counted as success)"

    ids=$(cd / && CLIPSHIFT_STUB_FAIL=fused:2 "$here/submit.sh" --run "$tmp/runs/fail" --data "$tmp/data" \
        --model "$tmp/model" --shards 3 --bin "$stubs" -- --chdir="$tmp/out")
    array=$(awk '/^shards:/ {print $4}' <<<"$ids")
    report=$(awk '/^report:/ {print $3}' <<<"$ids")
    jobs_submitted+=("$array" "$report")
    wait_jobs 60 "$array" "$report"
    states=$(scontrol -o show job "$array" | grep -o 'ArrayTaskId=[0-9]* .*JobState=[A-Z_]*' \
        | sed 's/ArrayTaskId=\([0-9]*\) .*JobState=/\1:/' | sort | tr '\n' ' ')
    [[ $states == "0:COMPLETED 1:COMPLETED 2:FAILED " ]] || die "failing shard: expected task 2 FAILED, got: $states"
    report_state=$(job_states "$report")
    [[ $report_state == CANCELLED ]] || die "report after a failed shard: expected CANCELLED, got $report_state"
    [[ ! -e $tmp/runs/fail/report ]] || die "the report ran after a failed shard"
    say "failing shard: task FAILED, report CANCELLED"
    say "PASS (--cluster-only): one-node Slurm cluster, job array + afterok, submit.sh/shard.sbatch/report.sbatch on stubs"
    exit 0
fi

# --- the real test: 3 shards on Slurm against one unsharded run ---------------------------
data=$repo/data/samples
model=$repo/models/tiny-clip
a=$tmp/runs/sharded
b=$tmp/runs/whole
sae=$repo/models/tiny-clip/sae-random.safetensors
ids=$(cd / && "$here/submit.sh" --run "$a" --data "$data" --model "$model" --shards 3 --bin "$bin" --seed 0 \
    --floor --sae "$sae" -- --chdir="$tmp/out")
echo "$ids"
array=$(awk '/^shards:/ {print $4}' <<<"$ids")
report=$(awk '/^report:/ {print $3}' <<<"$ids")
jobs_submitted+=("$array" "$report")
wait_jobs 600 "$array" "$report"
expect_states "$array" 3 COMPLETED
expect_states "$report" 1 COMPLETED
say "sharded run on Slurm: 3 shards + report COMPLETED"

# The reference: every stage in its own process (augment, encode and metrics apart, where
# the shards ran them fused), unsharded, with the same binaries.
ref() {
    local rc=0
    "$bin/clipshift-$1" "${@:2}" >>"$tmp/out/reference.log" 2>&1 || rc=$?
    ((rc == 0 || rc == 3)) || { tail -n 40 "$tmp/out/reference.log" >&2; die "reference clipshift-$1 failed with exit status $rc"; }
}
ref augment --run "$b" --data "$data" --seed 0 --floor
ref encode --run "$b" --model "$model"
ref metrics --run "$b"
ref text --run "$b"
ref sae --run "$b" --sae "$sae"
ref report --run "$b"
say "unsharded reference run done"

(cd "$repo" && cargo xtask compare "$a" "$b") || die "the sharded run differs from the unsharded one (above)"
say "PASS: 3 Slurm shards + report equal the unsharded run of data/samples (cargo xtask compare)"
