#!/usr/bin/env bash
# GPU checks on a CUDA machine (CI has no GPU, so nothing here runs in CI):
#   1. a CUDA training run with AMP (fp16 + GradScaler) and evaluation, single process;
#   2. the same through torchrun + NCCL (DistributedDataParallel, sharded evaluation);
#   3. benchmarks/model_speed.py side by side with torchvision, fp32 and AMP.
# Usage: bash benchmarks/gpu_check.sh OUT_DIR [REPEATS]   (runs from the repo root, PYTHONPATH=src)
set -euo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR [REPEATS]}
repeat=${2:-30}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

data="$out/shapes"
python3 -m detcli dataset synth "$data" --images 64 --classes 3 --size 128 --split train --split val
common=(configs/shapes/faster_rcnn_r18_fpn_shapes.yaml --set "data_root=$data" --set runner.max_epochs=2 --device cuda)

echo "== 1. CUDA + AMP training"
python3 -m detcli train "${common[@]}" --amp --work-dir "$out/amp"
tail -n 3 "$out/amp/log.jsonl"

echo "== 2. torchrun + NCCL"
torchrun --standalone --nproc_per_node 1 -m detcli train "${common[@]}" --work-dir "$out/ddp"
tail -n 3 "$out/ddp/log.jsonl"

echo "== 3. model speed vs torchvision"
python3 benchmarks/model_speed.py --device cuda --repeat "$repeat"
python3 benchmarks/model_speed.py --device cuda --repeat "$repeat" --amp
