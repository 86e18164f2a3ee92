#!/usr/bin/env bash
# The prompt-change gate of the README, end to end. Run from the repository root:
#   bash examples/evaluation/gate.sh [OUTPUT_DIR]
# Exits 1: the candidate system prompt makes German conversations drift to English.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-eval-out}"  # git ignores it
mkdir -p "$out"
if command -v micrometrics >/dev/null; then mm=micrometrics
elif [ -x .venv/bin/micrometrics ]; then mm=.venv/bin/micrometrics
else echo "micrometrics is not installed: pip install -e '.[dev]'" >&2; exit 2
fi
run=("$mm" eval "$here/dataset.jsonl" --metrics "$here/metrics.py")

"${run[@]}" --json "$out/recorded.json" --html "$out/report.html" || exit 2
"${run[@]}" --tag de --tag en --replay gpt-4o-mini --system-prompt "$here/baseline_prompt.txt" \
    --json "$out/baseline.json" --quiet || exit 2
"${run[@]}" --tag de --tag en --replay gpt-4o-mini --system-prompt "$here/candidate_prompt.txt" \
    --json "$out/candidate.json" --html "$out/candidate.html" --quiet || exit 2
"$mm" compare "$out/baseline.json" "$out/candidate.json" --max-regression 0.02
