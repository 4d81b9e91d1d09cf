#!/usr/bin/env bash
# The command-line tools end to end: lanes-mkmodel writes a model that lanes-run loads and runs the
# same as the built-in one; bad files and bad flags give a one-line error and a non-zero exit.
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin/lanes-mkmodel" --preset tiny --seed 1 -o "$tmp/m.bin" -t "$tmp/t.bin"
from_files=$("$bin/lanes-run" -m "$tmp/m.bin" -z "$tmp/t.bin" -p "hello world" -n 20 --json)
builtin=$("$bin/lanes-run" --preset tiny -p "hello world" -n 20 --json)
[ "$from_files" = "$builtin" ] || fail "saved model differs from the built-in one"
echo "$builtin" | grep -q '"reason":"length"' || fail "no reason in $builtin"

# The same preset as one GGUF file (tokenizer inside) runs the same; -z beside it is refused.
# (tiny-llama: a GGUF file is computed with ggml's numerics, tiny with run.c's.)
"$bin/lanes-mkmodel" --preset tiny-llama --seed 1 --format gguf -o "$tmp/m.gguf"
from_gguf=$("$bin/lanes-run" -m "$tmp/m.gguf" -p "hello world" -n 20 --json)
builtin_llama=$("$bin/lanes-run" --preset tiny-llama -p "hello world" -n 20 --json)
[ "$from_gguf" = "$builtin_llama" ] || fail "GGUF model differs from the built-in one: $from_gguf"
# tiny-gemma3 too, past its window of 32 (a gemma3 preset is written as GGUF only).
"$bin/lanes-mkmodel" --preset tiny-gemma3 --seed 1 --format gguf -o "$tmp/g3.gguf"
from_gguf=$("$bin/lanes-run" -m "$tmp/g3.gguf" -p "hello world" -n 40 --json)
builtin_g3=$("$bin/lanes-run" --preset tiny-gemma3 -p "hello world" -n 40 --json)
[ "$from_gguf" = "$builtin_g3" ] || fail "gemma3 GGUF model differs from the built-in one: $from_gguf"
if "$bin/lanes-mkmodel" --preset tiny-gemma3 -o "$tmp/g3.bin" -t "$tmp/g3.tok" 2> "$tmp/err"; then
  fail "gemma3 llama2.c checkpoint accepted"
fi
grep -q "only an F32 llama model" "$tmp/err" || fail "unclear gemma3 checkpoint error: $(cat "$tmp/err")"
# tiny-qwen35 too (a delta-net layer, then a gated attention layer), as GGUF only.
"$bin/lanes-mkmodel" --preset tiny-qwen35 --seed 1 --format gguf -o "$tmp/q35.gguf"
from_gguf=$("$bin/lanes-run" -m "$tmp/q35.gguf" -p "hello world" -n 40 --json)
builtin_q35=$("$bin/lanes-run" --preset tiny-qwen35 -p "hello world" -n 40 --json)
[ "$from_gguf" = "$builtin_q35" ] || fail "qwen35 GGUF model differs from the built-in one: $from_gguf"
# tiny-gemma4 too (per-layer shapes, shared KV, per-layer embeddings), past its window, as GGUF
# only: the same ids. (It generates id 1, which the built-in llama2.c tokenizer ends a stream on
# and shows as "\n<s>\n", as run.c does, and the GGUF one, whose end-of-generation id is 2,
# neither; so --ignore-eos, and the ids compared, not the text.)
"$bin/lanes-mkmodel" --preset tiny-gemma4 --seed 1 --format gguf -o "$tmp/g4.gguf"
from_gguf=$("$bin/lanes-run" -m "$tmp/g4.gguf" -p "hello world" -n 40 --ignore-eos --json |
            grep -o '"tokens":\[[^]]*\]')
builtin_g4=$("$bin/lanes-run" --preset tiny-gemma4 -p "hello world" -n 40 --ignore-eos --json |
             grep -o '"tokens":\[[^]]*\]')
[ -n "$from_gguf" ] && [ "$from_gguf" = "$builtin_g4" ] ||
  fail "gemma4 GGUF model differs from the built-in one: $from_gguf vs $builtin_g4"
if "$bin/lanes-run" -m "$tmp/m.gguf" -z "$tmp/t.bin" -p hi 2> "$tmp/err"; then fail "-z with GGUF accepted"; fi
grep -q "carries its own tokenizer" "$tmp/err" || fail "unclear -z error: $(cat "$tmp/err")"
if "$bin/lanes-mkmodel" --preset tiny --format gguf --type f8 -o "$tmp/x.gguf" 2> "$tmp/err"; then
  fail "--type f8 accepted"
fi
grep -q -- "--type f8: f32, f16, bf16, q8_0, q4_0, q4_k or q6_k" "$tmp/err" || fail "unclear --type error: $(cat "$tmp/err")"
[ ! -e "$tmp/x.gguf" ] || fail "a file was written for a bad --type"
if "$bin/lanes-mkmodel" --preset tiny --type f16 -o "$tmp/x.bin" -t "$tmp/x.tok" 2> "$tmp/err"; then
  fail "F16 llama2.c checkpoint accepted"
fi

# lanes-quantize: a synthetic F32 file quantized to Q8_0 holds what lanes-mkmodel --type q8_0 makes
# (the same summary: F16 for tiny's two ffn_down, noted once each); bad input is one line, exit 1.
q=$bin/lanes-quantize
"$bin/lanes-mkmodel" --preset tiny-llama --seed 1 --format gguf --type q8_0 -o "$tmp/m8.gguf" 2> "$tmp/err"
grep -q "2 matrices are F16" "$tmp/err" || fail "mkmodel q8_0 did not note the F16 matrices: $(cat "$tmp/err")"
"$q" "$tmp/m.gguf" "$tmp/q8.gguf" --type q8_0 > "$tmp/out" 2> "$tmp/err" || fail "lanes-quantize failed: $(cat "$tmp/err")"
[ "$(grep -c "written as F16" "$tmp/err")" -eq 2 ] || fail "expected two F16 notes: $(cat "$tmp/err")"
"$q" "$tmp/m8.gguf" "$tmp/q8b.gguf" --type q8_0 > "$tmp/out8" 2> /dev/null
[ "$(sed 's/^[^:]*://' "$tmp/out")" = "$(sed 's/^[^:]*://' "$tmp/out8")" ] ||
  fail "lanes-quantize and mkmodel q8_0 differ: $(cat "$tmp/out") vs $(cat "$tmp/out8")"
qerr() {   # expected exit code, text the one error line holds, then the arguments
  local want=$1 text=$2 rc=0
  shift 2
  "$q" "$@" > /dev/null 2> "$tmp/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "lanes-quantize $*: exit $rc, expected $want: $(cat "$tmp/err")"
  [ "$want" -eq 2 ] || [ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "lanes-quantize $*: not one line: $(cat "$tmp/err")"
  grep -q -- "$text" "$tmp/err" || fail "lanes-quantize $*: unclear error: $(cat "$tmp/err")"
}
qerr 2 "usage:" "$tmp/m.gguf" "$tmp/x.gguf"
qerr 2 "usage:" "$tmp/m.gguf" --type q8_0
qerr 1 "--type q5_k: q8_0, q4_0, q4_k, q6_k, f16, bf16 or f32" "$tmp/m.gguf" "$tmp/x.gguf" --type q5_k
qerr 1 "$tmp/none.gguf" "$tmp/none.gguf" "$tmp/x.gguf" --type q8_0
qerr 1 "$tmp/t.bin" "$tmp/t.bin" "$tmp/x.gguf" --type q8_0
cp "$tmp/m.gguf" "$tmp/same.gguf"
qerr 1 "both the input and the output" "$tmp/same.gguf" "$tmp/./same.gguf" --type f16
cmp -s "$tmp/m.gguf" "$tmp/same.gguf" || fail "lanes-quantize changed its input"
qerr 1 "$tmp/no/x.gguf" "$tmp/m.gguf" "$tmp/no/x.gguf" --type f16
[ ! -e "$tmp/x.gguf" ] || fail "lanes-quantize wrote a file on an error"
echo "cli: lanes-quantize ok"

# Several prompts run as lanes of the same steps give what each gives alone.
printf 'Once upon a time\nThe little dog\n\nOne day\n' > "$tmp/prompts"
batched=$("$bin/lanes-run" --preset tiny --prompts "$tmp/prompts" -n 30 --json)
alone=$(while IFS= read -r p; do "$bin/lanes-run" --preset tiny -p "$p" -n 30 --json; done < "$tmp/prompts")
[ "$batched" = "$alone" ] || fail "batched prompts differ from single runs"

# --teacher-force predicts a greedy generation back: after the prompt, each argmax is the next token.
gen=$("$bin/lanes-run" --preset tiny -p "Once upon a time" -n 12 --json)
arr() { echo "$gen" | sed -E "s/.*\"$1\":\[([0-9,]*)\].*/\1/"; }
pt=$(arr prompt_tokens); toks=$(arr tokens)
echo "{\"tokens\":[$pt,$toks]}" > "$tmp/ref.jsonl"
scored=$("$bin/lanes-run" --preset tiny --teacher-force "$tmp/ref.jsonl")
argmax=$(echo "$scored" | sed -E 's/.*"argmax":\[([0-9,]*)\].*/\1/')
np=$(echo "$pt" | tr ',' '\n' | wc -l)
want=$(echo "$toks" | tr ',' '\n')
got=$(echo "$argmax" | tr ',' '\n' | tail -n +"$np" | head -n "$(echo "$want" | wc -l)")
[ "$got" = "$want" ] || fail "teacher-forced argmax $argmax does not predict $toks"
echo '{"tokens":[1,99999]}' > "$tmp/badref.jsonl"
if "$bin/lanes-run" --preset tiny --teacher-force "$tmp/badref.jsonl" 2> "$tmp/err"; then fail "bad ids accepted"; fi
grep -q "badref.jsonl line 1" "$tmp/err" || fail "unclear --teacher-force error: $(cat "$tmp/err")"

# A truncated model: one error line naming the file, exit 1.
head -c 1000 "$tmp/m.bin" > "$tmp/trunc.bin"
if "$bin/lanes-run" -m "$tmp/trunc.bin" -z "$tmp/t.bin" -p hi 2> "$tmp/err"; then fail "truncated model accepted"; fi
grep -q "trunc.bin" "$tmp/err" || fail "error does not name the file: $(cat "$tmp/err")"
[ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "expected one error line: $(cat "$tmp/err")"
# A garbage tokenizer.
head -c 100 /dev/urandom > "$tmp/badtok.bin"
if "$bin/lanes-run" -m "$tmp/m.bin" -z "$tmp/badtok.bin" -p hi 2> "$tmp/err"; then fail "bad tokenizer accepted"; fi
grep -q "badtok.bin" "$tmp/err" || fail "tokenizer error does not name the file"
# A FIFO or a directory as model, tokenizer or config: refused at once (not hung on in open), the path named.
mkfifo "$tmp/fifo"
for f in "$tmp/fifo" "$tmp"; do
  set +e
  timeout 20 "$bin/lanes-run" -m "$tmp/m.bin" -z "$f" -p hi 2> "$tmp/err"; rc=$?
  set -e
  [ $rc -eq 1 ] || fail "lanes-run -z $f: exit $rc, want 1: $(cat "$tmp/err")"
  grep -q "$f: not a regular file" "$tmp/err" || fail "unclear -z $f error: $(cat "$tmp/err")"
  set +e
  timeout 20 "$bin/lanes-run" -m "$f" -z "$tmp/t.bin" -p hi 2> "$tmp/err"; rc=$?
  set -e
  [ $rc -eq 1 ] || fail "lanes-run -m $f: exit $rc, want 1: $(cat "$tmp/err")"
  grep -q "$f: not a regular file" "$tmp/err" || fail "unclear -m $f error: $(cat "$tmp/err")"
  set +e
  timeout 20 "$bin/lanes-server" --preset tiny --port 0 --config "$f" 2> "$tmp/err"; rc=$?
  set -e
  [ $rc -eq 2 ] || fail "lanes-server --config $f: exit $rc, want 2: $(cat "$tmp/err")"
  grep -q "config $f: not a regular file" "$tmp/err" || fail "unclear --config $f error: $(cat "$tmp/err")"
done
# Bad flags: usage and exit 2.
set +e
"$bin/lanes-run" --preset tiny -p hi --gemm nope 2>/dev/null; [ $? -eq 2 ] || fail "bad --gemm not rejected"
"$bin/lanes-run" --preset tiny 2> "$tmp/err"; [ $? -eq 2 ] || fail "missing prompt not rejected"
"$bin/lanes-bench" --lanes 0 2>/dev/null; [ $? -eq 2 ] || fail "bad --lanes not rejected"
set -e
grep -q "^lanes-run: no prompt: give -p TEXT or --prompts FILE$" "$tmp/err" \
  || fail "missing prompt not named: $(cat "$tmp/err")"
# lanes-bench --vs: each preset at --seq-len (longer than tiny-llama's own 256), every point timed
# in every model (a refused step attends nothing: attn_ms 0), the KV bytes per lane each model's
# plan gives: tiny-llama's 2 layers of keys and values, 2 KV heads of 16, 512 positions, fp32; the
# sliding and delta-net layers of the others hold less.
"$bin/lanes-bench" --preset tiny-llama --vs tiny-gemma3,tiny-qwen35 --seq-len 512 --no-kernels \
  --no-decode --no-sampling --lanes 1,3 --steps 2 --rounds 2 --pos 1000 --json "$tmp/vs.json" \
  > "$tmp/vs.out" 2> "$tmp/err" || fail "lanes-bench --vs: $(cat "$tmp/err")"
jq -e '.families | .ctx == 512 and .pos == 512 - 2 * 2 * 2 and (.points | length) == 6
       and all(.points[]; .step_ms > 0 and .attn_ms > 0)
       and ([.models[].model] == ["tiny-llama", "tiny-gemma3", "tiny-qwen35"])
       and .models[0].kv_lane_bytes == 2 * 2 * 32 * 512 * 4
       and all(.models[1:][]; .kv_lane_bytes < 2 * 2 * 32 * 512 * 4)' "$tmp/vs.json" > /dev/null ||
  fail "lanes-bench --vs: $(cat "$tmp/vs.json")"
grep -q "^    3 tiny-qwen35 " "$tmp/vs.out" || fail "lanes-bench --vs table: $(cat "$tmp/vs.out")"
# A delta-net model's decode table goes on from where each lane is (its state cannot rewind).
"$bin/lanes-bench" --preset tiny-qwen35 --no-kernels --no-sampling --lanes 1,3 --steps 2 \
  --json "$tmp/q35.json" > /dev/null 2> "$tmp/err" || fail "lanes-bench tiny-qwen35: $(cat "$tmp/err")"
jq -e '(.decode | length) == 2 and all(.decode[]; .attn_ms > 0)' "$tmp/q35.json" > /dev/null ||
  fail "lanes-bench tiny-qwen35 decode: $(cat "$tmp/q35.json")"
# Numbers are read strictly (atoi read "abc" as 0 and "12x" as 12): the flag and value are named.
for bad in "lanes-run --preset tiny -p hi -n 12x" "lanes-run --preset tiny -p hi --seed -1" \
           "lanes-run --preset tiny -p hi --temperature 1e999" \
           "lanes-server --preset tiny --port 0 --lanes abc" \
           "lanes-server --preset tiny --port 0 --idle-timeout 5s"; do
  set +e
  # shellcheck disable=SC2086
  timeout 20 $bin/$bad 2> "$tmp/err" > /dev/null; rc=$?
  set -e
  [ $rc -eq 2 ] || fail "$bad: exit $rc, want 2"
  flag=$(echo "$bad" | awk '{print $(NF-1)}')
  grep -q -- "bad $flag '" "$tmp/err" || fail "$bad: flag not named: $(cat "$tmp/err")"
done
# A top_p too small for a float keeps only the top token (it does not become 0, "off").
tiny_p=$("$bin/lanes-run" --preset tiny -p hi -n 24 --temperature 1 --top-p 1e-50 --seed 3 --json)
[ "$tiny_p" = "$("$bin/lanes-run" --preset tiny -p hi -n 24 --json)" ] \
  || fail "--top-p 1e-50 did not keep only the top token"
# The speed on stderr, as run.c prints it.
"$bin/lanes-run" --preset tiny -p hi -n 16 2> "$tmp/err" > /dev/null
grep -Eq '^achieved tok/s: [0-9]*[1-9][0-9]*\.[0-9]+$' "$tmp/err" || fail "no tok/s: $(cat "$tmp/err")"
# --temperature (loadgen's and the documented spelling) and --temp are the same flag, and it samples.
t1=$("$bin/lanes-run" --preset tiny -p hi -n 24 --temperature 1.5 --seed 5 --json)
t2=$("$bin/lanes-run" --preset tiny -p hi -n 24 --temp 1.5 --seed 5 --json)
greedy=$("$bin/lanes-run" --preset tiny -p hi -n 24 --json)
[ "$t1" = "$t2" ] || fail "--temperature and --temp differ"
[ "$t1" != "$greedy" ] || fail "--temperature 1.5 gave the greedy tokens"
# An over-long prompt is refused, not truncated.
long=$(printf 'word %.0s' $(seq 1 400))
if "$bin/lanes-run" --preset tiny -p "$long" 2> "$tmp/err"; then fail "over-long prompt accepted"; fi
grep -q "longer than the context" "$tmp/err" || fail "unclear over-long error: $(cat "$tmp/err")"
# --ctx: the context per lane ends a stream with reason context at that length, and may not exceed
# the model's seq_len (256 for tiny); the start-up line says the KV bytes.
out=$("$bin/lanes-run" --preset tiny --ctx 20 -p "Once upon a time" -n 100 --json 2> "$tmp/err")
echo "$out" | grep -q '"reason":"context"' || fail "--ctx 20 did not end with context: $out"
ntok=$(echo "$out" | sed 's/.*"prompt_tokens":\[\([^]]*\)\].*"tokens":\[\([^]]*\)\].*/\1,\2/' | tr ',' '\n' | wc -l)
[ "$ntok" -eq 21 ] || fail "--ctx 20: prompt + output is $ntok tokens, not 21: $out"
grep -q "context 20 tokens: KV cache 10.00 KiB per lane, 10.00 KiB in all" "$tmp/err" ||
  fail "no KV size line: $(cat "$tmp/err")"
if "$bin/lanes-run" --preset tiny --ctx 257 -p hi 2> "$tmp/err"; then fail "--ctx 257 accepted"; fi
grep -q "ctx 257 is longer than the model's seq_len 256" "$tmp/err" || fail "unclear --ctx error: $(cat "$tmp/err")"
echo '{"ctx": 300}' > "$tmp/ctx.json"
if timeout 20 "$bin/lanes-server" --preset tiny --config "$tmp/ctx.json" --port 0 2> "$tmp/err"; then
  fail "server accepted ctx 300"
fi
grep -q "ctx 300 is longer than the model's seq_len 256" "$tmp/err" || fail "unclear server ctx error: $(cat "$tmp/err")"
# The CPU affinity mask bounds the compute threads.
if command -v taskset >/dev/null; then
  # grep reads it all (no -q): an early exit would SIGPIPE lanes-run and, under pipefail, fail here.
  taskset -c 0 "$bin/lanes-run" --preset tiny -p hi -n 1 2>&1 >/dev/null | grep "threads 1$" >/dev/null ||
    fail "taskset -c 0 did not give 1 thread: $(taskset -c 0 "$bin/lanes-run" --preset tiny -p hi -n 1 2>&1 >/dev/null)"
fi
# At most 128 lanes, said clearly, in every program and the server's config file.
echo '{"lanes": 500}' > "$tmp/lanes.json"
for cmd in "lanes-server --lanes 500 --port 0" "lanes-server --config $tmp/lanes.json --port 0" \
           "lanes-run --preset tiny -p hi --lanes 500" "lanes-bench --lanes 1,500"; do
  set +e
  # shellcheck disable=SC2086
  timeout 20 "$bin"/$cmd > /dev/null 2> "$tmp/err"
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "$cmd: exit $rc, not 2"
  grep -q -- "--lanes 500: at most 128 lanes" "$tmp/err" || fail "$cmd: unclear error: $(cat "$tmp/err")"
done
# A shape whose KV cache cannot fit anywhere (1024 layers, 128 lanes x 2^20 positions: 64 TiB) is
# refused at start with what it needs and what is available, by lanes-run and lanes-server alike.
# The checkpoint is sparse: its weights are never read.
seq=1048576; layers=1024
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# shellcheck disable=SC2059
printf "$(le32 64)$(le32 64)$(le32 $layers)$(le32 4)$(le32 4)$(le32 512)$(le32 $seq)" > "$tmp/big.bin"
# floats: emb, 7 layer matrices of 64x64 and 2 norms per layer, the final norm, RoPE (seq x 16)
truncate -s $((28 + 4 * (512 * 64 + layers * (7 * 64 * 64 + 2 * 64) + 64 + seq * 16))) "$tmp/big.bin"
for prog in "lanes-run -p hi" "lanes-server --port 0"; do
  set +e
  # shellcheck disable=SC2086
  timeout 60 "$bin"/$prog -m "$tmp/big.bin" -z "$tmp/t.bin" --lanes 128 --ctx $seq > /dev/null 2> "$tmp/err"
  rc=$?
  set -e
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$prog: 64 TiB of KV cache: exit $rc"
  grep -q "lanes 128 x context $seq tokens need .* (KV cache 64.00 TiB) but only .* of memory is available: lower --lanes or --ctx" \
    "$tmp/err" || fail "$prog: unclear memory error: $(cat "$tmp/err")"
done
# The portable binary on older CPUs (emulated): without AVX2 it picks SSE, without SSE4.1 the scalar
# table, which is fused like AVX2 and so gives the same bits.
# (Sanitizer builds cannot run under qemu-user.)
# lanes-tokenize: the ids lanes-run feeds (llama2.c files), JSON input, GGUF tokenizers; bad input
# gives one error line and exit 1, a missing -m exit 2.
tok=$(printf 'hello world\n' | "$bin/lanes-tokenize" -m "$tmp/m.bin" -z "$tmp/t.bin")
run_ids=$("$bin/lanes-run" -m "$tmp/m.bin" -z "$tmp/t.bin" -p "hello world" -n 1 --json \
  | sed 's/.*"prompt_tokens":\(\[[0-9,]*\]\).*/\1/')
[ "$tok" = "$run_ids" ] || fail "lanes-tokenize $tok differs from lanes-run's prompt $run_ids"
json=$(printf '"hello world"\n' | "$bin/lanes-tokenize" -m "$tmp/m.bin" -z "$tmp/t.bin" --json)
[ "$json" = "$tok" ] || fail "lanes-tokenize --json differs from a plain line"
set +e
printf '"ok"\n[1]\n' | "$bin/lanes-tokenize" -m "$tmp/m.bin" -z "$tmp/t.bin" --json \
  > /dev/null 2> "$tmp/err"
[ $? -eq 1 ] || fail "lanes-tokenize took a JSON array"
"$bin/lanes-tokenize" < /dev/null 2> /dev/null; [ $? -eq 2 ] || fail "lanes-tokenize without -m"
set -e
grep -q "^lanes-tokenize: stdin line 2: not one JSON string$" "$tmp/err" \
  || fail "unclear lanes-tokenize --json error: $(cat "$tmp/err")"
[ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "expected one error line: $(cat "$tmp/err")"
shared=${LANES_SHARED:-$(dirname "$0")/../../shared}
spm=$shared/models/gguf/llama2-spm-style.f32.gguf
if [ -f "$spm" ]; then
  # llama.cpp's ids (../shared/refs/tokenizer.encode.jsonl); <s> is BOS unless told otherwise.
  out=$(printf 'Hello world\n<s>\n' | "$bin/lanes-tokenize" -m "$spm")
  [ "$out" = "$(printf '[1,15043,3186]\n[1,1]')" ] || fail "lanes-tokenize $spm: $out"
  out=$(printf '<s>\n' | "$bin/lanes-tokenize" -m "$spm" --no-special --no-parse-special --words)
  [ "$out" = '{"words":["<s>"],"ids":[529,29879,29958]}' ] || fail "lanes-tokenize --words: $out"
  echo "cli: lanes-tokenize on $spm ok"
else
  echo "cli: $spm not found: GGUF lanes-tokenize check not run"
fi
# lanes-run on llama.cpp's gemma4-style file: the 64 ids of its first public reference.
g4=$shared/models/gguf/gemma4-style.f32.gguf
if [ -f "$g4" ]; then
  ref=$(head -n 1 "$shared/refs/gguf/gemma4-style.f32.greedy.jsonl")
  want=$(echo "$ref" | grep -o '"generated": \[[^]]*\]' | sed 's/"generated": //; s/ //g')
  prompt=$(echo "$ref" | grep -o '"prompt": "[^"]*"' | sed 's/"prompt": "//; s/"$//')
  out=$("$bin/lanes-run" -m "$g4" -p "$prompt" -n 64 --ignore-eos --json 2> /dev/null)
  got=$(echo "$out" | grep -o '"tokens":\[[^]]*\]' | sed 's/"tokens"://')
  [ -n "$want" ] && [ "$got" = "$want" ] || fail "lanes-run $g4 \"$prompt\": $got, llama.cpp $want"
  echo "cli: lanes-run on $g4 gives llama.cpp's 64 ids"
else
  echo "cli: $g4 not found: gemma4-style lanes-run check not run"
fi

if [ -n "${LANES_SANITIZED:-}" ]; then
  echo "cli: sanitizer build: older-CPU check not run"
elif [ "$(uname -m)" != x86_64 ]; then
  echo "cli: not an x86-64 machine: older-CPU check not run"
elif command -v qemu-x86_64 >/dev/null; then
  native=$("$bin/lanes-run" --preset tiny -p "Once upon a time" -n 12 --json)
  scalar=$(qemu-x86_64 -cpu core2duo "$bin/lanes-run" --preset tiny -p "Once upon a time" -n 12 --json)
  [ "$scalar" = "$native" ] || fail "scalar path on a pre-SSE4.1 CPU differs: $scalar"
  qemu-x86_64 -cpu Nehalem "$bin/lanes-run" --preset tiny -p "Once upon a time" -n 12 --json \
    | grep -q '"reason":"length"' || fail "SSE path on a pre-AVX CPU failed"
  echo "cli: older CPUs ok (qemu)"
else
  fail "qemu-x86_64 not installed (bash scripts/deps.sh --test installs qemu-user): older-CPU check not run"
fi
echo "cli: ok"
