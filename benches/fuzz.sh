#!/usr/bin/env bash
# Fuzzing the loaders, large: the seeded mutational loop of tests/fuzz.rs (.pth, .safetensors,
# .npy, TF.js manifests + shards, PNG/JPEG, the NIQE model .npz) in release, in a child process
# under `ulimit -v` (4,000,000 KiB). Prints, per format, the cases, Ok / Err / panics and the ten most frequent
# error messages (digits folded to N); a panic, a multi-line error, an abort or a blown memory
# cap fails the run with the seed and case that reproduce it.
#
#   benches/fuzz.sh            env: FUZZ_CASES=50000 FUZZ_SEED=13 FUZZ_FORMATS=pth,npy,...
#                                   FUZZ_KEEP=DIR (failing inputs are copied there)
# One case again: FUZZ_SEED=S FUZZ_FIRST=CASE FUZZ_CASES=1 benches/fuzz.sh (plus the
# FUZZ_FORMATS of the run, if it had one). The TF.js cases use the downloaded face-api.js
# landmark model when weights/fetch.sh has run, and a small manifest of their own always.
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_CASES="${FUZZ_CASES:-50000}" FUZZ_SEED="${FUZZ_SEED:-13}"
cargo test --release --test fuzz --no-run --quiet
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $FUZZ_CASES cases, seed $FUZZ_SEED"
start=$(date +%s)
cargo test --release --quiet --test fuzz -- --nocapture 2>&1 | grep -E '^(fuzz:|PANIC|MULTI-LINE|  reproduce|test result|the fuzzing child)'
echo "wall: $(( $(date +%s) - start )) s"
