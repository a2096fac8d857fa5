#!/bin/sh
# gen.sh [OUTDIR]: compiles the GLSL compute shaders of this directory to
# SPIR-V with glslc (Debian package glslc), into OUTDIR (default: this
# directory, where the committed .spv files live). `go generate
# ./spec/vulkan` runs it; TestSPIRVCurrent runs it into a temporary
# directory and compares.
set -eu
cd "$(dirname "$0")"
out=${1:-.}
flags="--target-env=vulkan1.1 -O -Werror"
pids=""
for s in unpack gather quantize renorm update bias loss; do
  glslc $flags "$s.comp" -o "$out/$s.spv" & pids="$pids $!"
done
# The GPT operators (SPEC.md §20): one shader per gpt_*.comp file.
for s in gpt_*.comp; do
  [ -e "$s" ] || continue
  glslc $flags "$s" -o "$out/${s%.comp}.spv" & pids="$pids $!"
done
# Their integer dot-product variants (shaderIntegerDotProduct; dot.glsl).
for s in gpt_f_gemm gpt_b_gemm; do
  glslc $flags -DDOT "$s.comp" -o "$out/${s}_dot.spv" & pids="$pids $!"
done
for m in fwd dx dw; do
  M=$(echo "$m" | tr a-z A-Z)
  glslc $flags -DMODE_$M gemm.comp -o "$out/gemm_$m.spv" & pids="$pids $!"
  glslc $flags -DMODE_$M -DTILE=128 gemm.comp -o "$out/gemm_${m}_big.spv" & pids="$pids $!"
  # The integer dot-product variants (devices with shaderIntegerDotProduct).
  glslc $flags -DMODE_$M -DDOT gemm.comp -o "$out/gemm_${m}_dot.spv" & pids="$pids $!"
  glslc $flags -DMODE_$M -DDOT -DTILE=128 gemm.comp -o "$out/gemm_${m}_big_dot.spv" & pids="$pids $!"
done
for p in $pids; do wait "$p"; done
