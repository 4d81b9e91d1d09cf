#!/usr/bin/env bash
# The per-family decode table (issue 11): each synthetic preset of PRESETS against the first (the
# same-size Llama), decode tok/s at LANES lanes and KV (or delta-net state) bytes per lane, at each
# context of CTXS, decoding near the context's end; every model is made with the longest of CTXS as
# its seq_len (a sliding window may not exceed a model's seq_len, and 15m-gemma3's 512 exceeds
# 256), each run takes its context per lane with --ctx. One lanes-bench --vs process per context holds
# every preset's model and lanes: the lanes are prefilled once (128 lanes x 4064 positions take
# minutes per model), then ROUNDS rounds of STEPS-step medians run the presets in turn within each
# round, so that a load swing of the shared host hits them alike; the best round counts. Prints a
# markdown table per context with ratios to the first preset, and the date and load around each run.
# Environment: PRESETS ("15m-llama 15m-gemma3 15m-qwen35"), CTXS ("256 4096"), LANES (1,16,64,128),
# ROUNDS (3), STEPS (8), OUT (out/families: lanes-bench's output and JSON per context).
# Needs a Release build in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a presets <<< "${PRESETS:-15m-llama 15m-gemma3 15m-qwen35}"
ctxs=${CTXS:-256 4096} lanes=${LANES:-1,16,64,128} rounds=${ROUNDS:-3} steps=${STEPS:-8}
out=${OUT:-out/families}
((${#presets[@]} >= 2)) || { echo "bench-families: PRESETS needs a base and one preset more" >&2; exit 2; }
mkdir -p "$out"
others=$(IFS=,; echo "${presets[*]:1}")
seq_len=$(printf '%s\n' $ctxs | sort -n | tail -n 1)
load() { cut -d' ' -f1-3 /proc/loadavg; }

for ctx in $ctxs; do
  echo "context $ctx: started $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(load)" >&2
  build/lanes-bench --preset "${presets[0]}" --vs "$others" --seq-len "$seq_len" --ctx "$ctx" \
    --pos $((ctx - 32)) --steps "$steps" --rounds "$rounds" --lanes "$lanes" \
    --no-kernels --no-decode --no-sampling --json "$out/ctx$ctx.json" > "$out/ctx$ctx.txt"
  echo "context $ctx: ended $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(load)" >&2
done

echo "PRESETS=\"${presets[*]}\" ROUNDS=$rounds STEPS=$steps LANES=$lanes CTXS=\"$ctxs\" bash scripts/bench-families.sh"
for ctx in $ctxs; do
  f=$out/ctx$ctx.json
  echo
  echo "Context $ctx, decode from position $(jq .families.pos "$f") on; aggregate tok/s (ratio to ${presets[0]}); attention ms per step at the most lanes (ratio)"
  echo
  jq -r '.families as $f | ($f.points | map(.lanes) | unique) as $ls
    | ($f.points | map(select(.model == $f.models[0].model)) | INDEX(.lanes | tostring)) as $base
    | ["lanes"] + $ls | @tsv,
      ($f.models[] | .model as $m | .kv_lane_bytes as $kv
       | [$m, $kv] + [$ls[] as $l | $f.points[] | select(.model == $m and .lanes == $l)
                      | [.tok_s, .tok_s / $base[$l | tostring].tok_s, .attn_ms,
                         .attn_ms / $base[$l | tostring].attn_ms] | @csv]
       | @tsv)' "$f" |
  awk -F'\t' 'NR == 1 {
      printf "| preset | KV per lane |"; for (i = 2; i <= NF; i++) printf " %s lanes |", $i
      printf " attention, %s lanes |\n|---|---:|", $NF; for (i = 2; i <= NF + 1; i++) printf "---:|"
      printf "\n"; next }
    { printf "| %s | %.2f MiB |", $1, $2 / 1048576
      for (i = 3; i <= NF; i++) { split($i, v, ","); printf " %.0f (%.2fx) |", v[1], v[2] }
      printf " %.3f ms (%.0f%%) |\n", v[3], 100 * v[4] }'
done
