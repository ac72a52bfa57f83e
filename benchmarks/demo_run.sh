#!/usr/bin/env bash
# The README's demo claim, measured: wall time of `detcli demo` (data, training, evaluation,
# drawings) on 2 CPU cores, and the val bbox mAP@[.5:.95] it reaches (goal: >= 0.5 in <= 10 min).
# Not run by CI (minutes). Usage: bash benchmarks/demo_run.sh [OUT_DIR] [extra detcli demo args]
set -euo pipefail
out=${1:-/tmp/detcli-demo-bench}
shift || true
rm -rf "$out"
cores=$(python3 -c "import os; print(','.join(map(str, sorted(os.sched_getaffinity(0))[:2])))")
start=$(date +%s.%N)
taskset -c "$cores" detcli demo --out "$out" --device cpu "$@" > "$out.log" 2>&1 || { tail -n 30 "$out.log"; exit 1; }
end=$(date +%s.%N)
python3 - "$out" "$start" "$end" <<'PY'
import json, sys
out, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
metrics = json.load(open(f"{out}/eval/metrics.json"))
mAP = metrics.get("bbox_mAP", metrics.get("metrics", {}).get("bbox_mAP"))
print(f"detcli demo on 2 cores: {end - start:.0f} s wall, val bbox mAP@[.5:.95] = {mAP:.3f}")
PY
grep -E "demo finished" "$out.log" || true
