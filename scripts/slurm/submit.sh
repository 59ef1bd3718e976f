#!/usr/bin/env bash
# Submit a sharded clipshift run to Slurm: a job array of N shards (shard.sbatch), then
# the whole-run stages (report.sbatch: text, the SAE stage with --sae, report) once every
# shard has succeeded.
#
#   scripts/slurm/submit.sh --run RUN --data DATA --model MODEL --shards N
#       [--bin DIR] [--seed S] [--suite FILE] [--floor] [--device D] [--batch B]
#       [--limit L] [--sae FILE] [--throttle P] [-- extra sbatch arguments, given to both jobs]
#
# Paths are made absolute, so the jobs work whatever directory they start in; RUN,
# DATA, MODEL and the binaries must be on a filesystem every node sees at the same path.
# Submitting the same command again resumes a run: finished shards finish at once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() {
    sed -n '6,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
    echo "submit.sh: error: $*" >&2
    exit 1
}

run='' data='' model='' shards='' bin=$repo/target/debug
seed='' suite='' floor='' device='' batch='' limit='' sae='' throttle=''
extra=()
while (($# > 0)); do
    case $1 in
        --run | --data | --model | --shards | --bin | --seed | --suite | --device | --batch | --limit | --sae | --throttle)
            (($# >= 2)) || die "$1 needs a value"
            opt=${1#--}
            printf -v "$opt" '%s' "$2"
            shift 2
            ;;
        --run=* | --data=* | --model=* | --shards=* | --bin=* | --seed=* | --suite=* | --device=* | --batch=* | --limit=* | --sae=* | --throttle=*)
            opt=${1%%=*}
            opt=${opt#--}
            printf -v "$opt" '%s' "${1#*=}"
            shift
            ;;
        --floor)
            floor=1
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        --)
            shift
            extra=("$@")
            break
            ;;
        *)
            usage >&2
            die "unknown argument '$1'"
            ;;
    esac
done

[[ -n $run ]] || die "--run is required"
[[ -n $data ]] || die "--data is required"
[[ -n $model ]] || die "--model is required"
[[ -n $shards ]] || die "--shards is required"
if ! [[ $shards =~ ^[1-9][0-9]*$ ]] || ((shards > 9999)); then
    die "--shards must be between 1 and 9999, not '$shards'"
fi
[[ -z $throttle || $throttle =~ ^[1-9][0-9]*$ ]] || die "--throttle must be a positive integer, not '$throttle'"
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm submit host"

# abs OPTION PATH: PATH made absolute; it must exist (in a command substitution, die
# ends the subshell and `set -e` the script).
abs() { realpath -e -- "$2" 2>/dev/null || die "$1 $2: no such file or directory"; }
run=$(realpath -m -- "$run")
data=$(abs --data "$data")
model=$(abs --model "$model")
bin=$(abs --bin "$bin")
[[ -d $data ]] || die "--data $data is not a directory"
[[ -d $model ]] || die "--model $model is not a directory"
for stage in fused text report; do
    [[ -x $bin/clipshift-$stage ]] || die "$bin/clipshift-$stage is missing or not executable (build it, or pass --bin DIR)"
done
if [[ -n $suite ]]; then
    suite=$(abs --suite "$suite")
fi
if [[ -n $sae ]]; then
    sae=$(abs --sae "$sae")
    [[ -x $bin/clipshift-sae ]] || die "$bin/clipshift-sae is missing or not executable (build it, or pass --bin DIR)"
fi

# The jobs get the configuration through their environment (sbatch --export=ALL);
# CLIPSHIFT_* variables of the caller that were not given as options are cleared.
unset CLIPSHIFT_SEED CLIPSHIFT_SUITE CLIPSHIFT_FLOOR CLIPSHIFT_DEVICE CLIPSHIFT_BATCH CLIPSHIFT_LIMIT CLIPSHIFT_SAE
export CLIPSHIFT_BIN=$bin CLIPSHIFT_RUN=$run CLIPSHIFT_DATA=$data CLIPSHIFT_MODEL=$model CLIPSHIFT_SHARDS=$shards
[[ -n $seed ]] && export CLIPSHIFT_SEED=$seed
[[ -n $suite ]] && export CLIPSHIFT_SUITE=$suite
[[ -n $floor ]] && export CLIPSHIFT_FLOOR=1
[[ -n $device ]] && export CLIPSHIFT_DEVICE=$device
[[ -n $batch ]] && export CLIPSHIFT_BATCH=$batch
[[ -n $limit ]] && export CLIPSHIFT_LIMIT=$limit
[[ -n $sae ]] && export CLIPSHIFT_SAE=$sae
[[ -n ${ORT_DYLIB_PATH:-} ]] || echo "submit.sh: note: ORT_DYLIB_PATH is not set; clipshift-fused will search for ONNX Runtime itself" >&2

array=0-$((shards - 1))${throttle:+%$throttle}

# `sbatch --parsable` prints "jobid" or "jobid;cluster".
array_id=$(sbatch --parsable --export=ALL --array="$array" "${extra[@]}" "$here/shard.sbatch")
array_id=${array_id%%;*}
[[ $array_id =~ ^[0-9]+$ ]] || die "sbatch printed '$array_id' instead of a job id"
report_id=$(sbatch --parsable --export=ALL --dependency="afterok:$array_id" --kill-on-invalid-dep=yes \
    "${extra[@]}" "$here/report.sbatch")
report_id=${report_id%%;*}
[[ $report_id =~ ^[0-9]+$ ]] || die "sbatch printed '$report_id' instead of a job id (the shard array $array_id is queued)"

echo "shards: job array $array_id ($shards tasks)"
echo "report: job $report_id (after all shards succeed)"
echo "run:    $run (report at $run/report/index.html)"
