#!/usr/bin/env bash
# gpu-check.sh: the Vulkan backend on a real GPU, in one run of a few minutes.
#
# Here, on a machine with Go and a Debian package registry, prepare what
# travels with the tree (under out/, which git ignores; ~38 MB):
#   scripts/gpu-check.sh --prepare
#     out/gpu-check/beluga.gz      the CLI, linux/amd64, CGO_ENABLED=0 (what ships: the
#                                  Vulkan loader opened through purego), stripped
#     out/gpu-check/beluga-cgo.gz  the same with cgo (NVML compiled in), tried only if
#                                  the cgo-free one fails to list the devices
#     out/gpu-check/debs/    apt-get download of the Vulkan loader (libvulkan1),
#                            libglvnd (without it the loader finds the NVIDIA ICD,
#                            libGLX_nvidia.so.0, but no vkCreateInstance) and
#                            vulkaninfo with its libraries
# There, on the GPU machine (NVIDIA driver with its Vulkan ICD; no Vulkan loader,
# no Go, no registry; python3 with PyTorch and CUDA), from the tree's root:
#   scripts/gpu-check.sh
# It unpacks the debs into $TMPDIR/beluga-gpu-check (dpkg -x: no root needed; as root
# it falls back to unpacking into / and ldconfig if the private copy finds no
# GPU), points the loader at the NVIDIA ICD, prints the GPU's Vulkan properties
# (vulkaninfo --summary and beluga's device list), trains the MLP example on the
# GPU and on the CPU to the same digest, runs `beluga devnet --backend auto` (every
# solver on the GPU, the verifiers replaying on the CPU), runs the conformance check
# (40 random specs, spec/testdata/vectors and MLP 784-256-128-10 at batch 64,
# 1024 and 8192; 20 random small GPTs and spec/testdata/gptvectors: loss and
# state digest after every step, Vulkan against the CPU engine of the same
# machine; exit 1 at the first difference), then times MLP 784-256-128-10 at
# those batches on Vulkan, the CPU engine on every core and PyTorch CUDA eager
# in float32 and bf16 autocast, and a step of the GPT example (beluga train
# --example gpt's model) on Vulkan and on the CPU engine, in the same run.
#
# Environment: GPU_CHECK_DIR (default out/gpu-check), PYTHON (default python3),
# STEPS (timed steps per repeat, default 50), BATCHES (default 64,1024,8192),
# GPT_RANDOM (random GPTs checked, default 20), GPT_STEPS (timed GPT steps, default 5),
# VK_DRIVER_FILES (the ICD json, found by itself in the usual places otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${GPU_CHECK_DIR:-out/gpu-check}
debs="libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 vulkan-tools libwayland-client0 libx11-6 libx11-data libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 libffi8"
# GPU_CHECK_ALLOW_CPU=1 rehearses the script on a machine without a GPU
# (Mesa's lavapipe: VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json).
gpu_only=(--gpu-only); want="GPU, Vulkan"
if [ "${GPU_CHECK_ALLOW_CPU:-}" = 1 ]; then gpu_only=(); want="Vulkan"; fi

if [ "${1:-}" = "--prepare" ]; then
  new="$dir.new"; rm -rf "$new"; mkdir -p "$new/debs"
  GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$new/beluga" ./cmd/beluga
  GOOS=linux GOARCH=amd64 CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o "$new/beluga-cgo" ./cmd/beluga
  gzip -f "$new/beluga" "$new/beluga-cgo"
  # shellcheck disable=SC2086
  (cd "$new/debs" && apt-get download $debs >/dev/null 2>&1 || (cd "$new/debs" && apt-get download $debs))
  rm -rf "$dir"; mv "$new" "$dir"
  echo "prepared $dir: $(du -sh "$dir" | cut -f1) ($(ls "$dir/debs" | wc -l) debs); carry it with the tree and run scripts/gpu-check.sh there"
  exit 0
fi

[ -f "$dir/beluga.gz" ] || { echo "gpu-check: no $dir/beluga.gz: run scripts/gpu-check.sh --prepare on a machine with Go and apt first" >&2; exit 2; }
ls "$dir"/debs/*.deb >/dev/null 2>&1 || { echo "gpu-check: no .deb files in $dir/debs: run --prepare first" >&2; exit 2; }

echo "== machine"
uname -srm
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not found"
nproc

echo "== Vulkan loader and libglvnd from $dir/debs (private copy)"
root=${GPU_CHECK_ROOT:-${TMPDIR:-/tmp}/beluga-gpu-check}
mkdir -p "$root/bin"
gunzip -c "$dir/beluga.gz" >"$root/bin/beluga" && chmod +x "$root/bin/beluga"
if [ -f "$dir/beluga-cgo.gz" ]; then gunzip -c "$dir/beluga-cgo.gz" >"$root/bin/beluga-cgo" && chmod +x "$root/bin/beluga-cgo"; fi
bin=$root/bin/beluga
for f in "$dir"/debs/*.deb; do
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$f" "$root"
  else # no dpkg: a .deb is an ar archive holding data.tar.*
    deb=$(realpath "$f"); tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$deb" && tar -xf data.tar.* -C "$root")
    rm -rf "$tmp"
  fi
done
libdir=$root/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH="$libdir:$root/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:/usr/local/nvidia/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export BELUGA_VULKAN_LIB=$libdir/libvulkan.so.1
if [ -z "${VK_DRIVER_FILES:-}" ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
             /etc/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then VK_DRIVER_FILES=$icd; break; fi
  done
fi
if [ -z "${VK_DRIVER_FILES:-}" ]; then
  VK_DRIVER_FILES=$(find / -xdev -name 'nvidia_icd*.json' 2>/dev/null | head -1 || true)
fi
[ -n "${VK_DRIVER_FILES:-}" ] || { echo "gpu-check: no NVIDIA Vulkan ICD (nvidia_icd.json) on this machine" >&2; exit 2; }
export VK_DRIVER_FILES VK_ICD_FILENAMES=$VK_DRIVER_FILES
echo "ICD: $VK_DRIVER_FILES"; cat "$VK_DRIVER_FILES"; echo

echo "== Vulkan properties"
list=$("$bin" bench vulkan --list 2>&1 || true)
echo "$list"
if ! grep -q "$want" <<<"$list" && [ -x "$root/bin/beluga-cgo" ]; then
  echo "the cgo-free binary lists no usable device: trying the cgo build"
  bin=$root/bin/beluga-cgo
  list=$("$bin" bench vulkan --list 2>&1 || true)
  echo "$list"
fi
echo "binary: $bin"
if ! grep -q "$want" <<<"$list"; then
  if [ "$(id -u)" = 0 ]; then
    echo "no GPU through the private copy: unpacking the debs into / and running ldconfig"
    for f in "$dir"/debs/*.deb; do dpkg-deb -x "$f" /; done
    ldconfig
    unset BELUGA_VULKAN_LIB
    "$bin" bench vulkan --list
  else
    echo "gpu-check: the Vulkan loader sees no GPU (and not root, so no system install)" >&2; exit 1
  fi
fi
"$root/usr/bin/vulkaninfo" --summary 2>/dev/null || vulkaninfo --summary 2>/dev/null || echo "(vulkaninfo did not run; beluga's list above is what the backend sees)"

echo "== beluga train: --backend auto picks the GPU and ends at the CPU's digest"
tmp_out=$(mktemp -d)
gpu_backend=auto
[ "${GPU_CHECK_ALLOW_CPU:-}" = 1 ] && gpu_backend=vulkan # auto never takes a CPU device
for b in $gpu_backend cpu; do
  (cd "$tmp_out" && timeout 300 "$bin" train --steps 300 --backend "$b" --json >"$b.json" 2>"$b.err") || { cat "$tmp_out/$b.err"; exit 1; }
  grep -E '^backend:' "$tmp_out/$b.err" || true
  cat "$tmp_out/$b.json"
done
grep -q '"backend":"vulkan"' "$tmp_out/$gpu_backend.json" || { echo "gpu-check: train --backend $gpu_backend did not train on Vulkan" >&2; exit 1; }
d_gpu=$(grep -o '"final_digest":"[0-9a-f]*"' "$tmp_out/$gpu_backend.json"); d_cpu=$(grep -o '"final_digest":"[0-9a-f]*"' "$tmp_out/cpu.json")
if [ "$d_gpu" != "$d_cpu" ]; then echo "gpu-check: train --backend $gpu_backend and cpu end at different digests" >&2; exit 1; fi
echo "same final digest on $gpu_backend (Vulkan) and cpu: $d_cpu"
rm -rf "$tmp_out"

echo "== beluga devnet: solvers train on the GPU, CPU verifiers audit them clean (cross-backend)"
dn=$(cd "${TMPDIR:-/tmp}" && timeout 300 "$bin" devnet --backend "$gpu_backend" --json) || { echo "$dn"; echo "gpu-check: devnet --backend $gpu_backend failed" >&2; exit 1; }
echo "$dn"
backends=$(grep -o '"backends":\[[^]]*\]' <<<"$dn" || true)
if [ -z "$backends" ] || grep -q '"cpu' <<<"$backends" || ! grep -q '"vulkan' <<<"$backends"; then
  echo "gpu-check: devnet's jobs did not all train on Vulkan: $backends" >&2; exit 1
fi
echo "devnet: every job trained on Vulkan, honest jobs audited clean on the CPU, the cheater slashed"

echo "== conformance and timing (Vulkan vs CPU engine vs PyTorch CUDA)"
python=${PYTHON:-python3}
peer=(--python "$python")
if ! "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "note: $python has no PyTorch with CUDA: no peer rows"
  peer=()
fi
timeout 480 "$bin" bench vulkan "${gpu_only[@]}" --vectors spec/testdata/vectors --random 40 --check-steps 3 \
  --gpt-vectors spec/testdata/gptvectors --gpt-random "${GPT_RANDOM:-20}" --gpt-check-steps 3 \
  --batches "${BATCHES:-64,1024,8192}" --steps "${STEPS:-50}" --repeats 3 "${peer[@]}"

echo "== the other product path: the same conformance with the dot path forced off (or on), digests again the CPU's"
other=0; grep -q "integer dot: accelerated" <<<"$list" || other=1
BELUGA_VULKAN_DOT=$other timeout 300 "$bin" bench vulkan "${gpu_only[@]}" --no-time --vectors spec/testdata/vectors --random 10 --check-steps 3 \
  --gpt-vectors spec/testdata/gptvectors --gpt-random 5 --gpt-check-steps 3 --batches 64 || { echo "gpu-check: BELUGA_VULKAN_DOT=$other differs" >&2; exit 1; }

echo "== GPT example step time: Vulkan vs CPU engine (every core)"
timeout 300 "$bin" bench train --model gpt --no-learn --no-peer --gpt-time-steps "${GPT_STEPS:-5}" \
  --threads "$(nproc)" --backend "$gpu_backend"
echo "gpu-check: done"
