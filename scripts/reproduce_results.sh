#!/usr/bin/env bash
# Train and evaluate the runs of docs/results.md (run scripts/prepare_results_data.sh first).
#   scripts/reproduce_results.sh                      # whatever device is present
#   TRAIN_ARGS="trainer.accelerator=gpu" scripts/reproduce_results.sh
#   STAGES=evaluate scripts/reproduce_results.sh     # re-score the checkpoints already in $RUNS
# Each run lands in $RUNS/<experiment>/ (checkpoints/, csv/, results.json); the tables are
# written to $RUNS/tables.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
RUNS=${RUNS:-outputs/results}
read -r -a TRAIN_ARGS <<< "${TRAIN_ARGS:-}"
read -r -a EVAL_ARGS <<< "${EVAL_ARGS:-}"
STAGES=${STAGES:-train evaluate}
EXPERIMENTS=(ctcf_joint ctcf_base_only ctcf_seq_only p73_joint chr20_joint)

if [[ " $STAGES " == *" train "* ]]; then
  for experiment in "${EXPERIMENTS[@]}"; do
    "$PYTHON" -m seqmodel.train experiment="$experiment" hydra.run.dir="$RUNS/$experiment" "${TRAIN_ARGS[@]}"
  done
fi
[[ " $STAGES " == *" evaluate "* ]] || exit 0

evaluate() {  # evaluate <experiment> <overrides...>
  local experiment=$1
  shift
  "$PYTHON" -m seqmodel.evaluate ckpt_path="$RUNS/$experiment/checkpoints/best.ckpt" \
    hydra.run.dir="$RUNS/$experiment/evaluate" output="$RUNS/$experiment/results.json" "$@" "${EVAL_ARGS[@]}"
}
for experiment in ctcf_joint ctcf_base_only ctcf_seq_only; do
  evaluate "$experiment" data=ctcf_regional \
    hits=data/ctcf_demo.ctcf_hits.bed \
    baselines.pwm_motifs=data/jaspar2024_selected.jaspar baselines.pwm_motif_id=MA0139.1 baselines.pwm_hit_threshold=12
done
evaluate p73_joint data=p73_regional hits=data/prepared/p73/hits.bed \
  baselines.pwm_motifs=data/jaspar2024_selected.jaspar baselines.pwm_motif_id=MA0106.3 baselines.pwm_hit_threshold=10
evaluate chr20_joint data=chr20_tiles hits=data/prepared/chr20/hits.bed \
  real_mutations=data/prepared/chr20/mutations.vcf.gz

"$PYTHON" scripts/results_tables.py "$RUNS" > "$RUNS/tables.md"
cat "$RUNS/tables.md"
