#!/usr/bin/env python3
"""Load a Beluga weights file (`beluga job download`) with NumPy.

The file is a safetensors file (the `safetensors` library reads it too):

    le64(N) | N bytes of JSON header, space-padded | tensor data

The header maps each tensor name to {"dtype": "I32" or "I64", "shape":
[...], "data_offsets": [begin, end]} and "__metadata__" to strings: format
("beluga-weights/v1"), job_id, step, state_digest (the committed final
digest, which `beluga job download` has already checked) and master_frac.
Weights are fixed-point numbers: the real value is v / 2**master_frac. An
MLP has, per linear layer i, layers.<i>.weight [out, in], layers.<i>.bias
[out] and their momentum buffers (layers.<i>.weight.momentum,
layers.<i>.bias.momentum), which training needs and inference does not. A
GPT has, per parameter P, P (int32 weights), P.m and P.v (AdamW's moments,
int32 and int64; SPEC.md §20.10), which momenta=False leaves out.

    from load_weights import load
    meta, tensors = load("job.safetensors")          # int32 arrays
    meta, params = load("job.safetensors", as_float=True, momenta=False)
    w0, b0 = params["layers.0.weight"], params["layers.0.bias"]   # y = x @ w0.T + b0

Run as a script, it prints a summary (--summary: JSON).
"""

import json
import struct
import sys

import numpy as np

FORMAT = "beluga-weights/v1"
MAX_HEADER = 1 << 20


def load(path, as_float=False, momenta=True):
    """Return (metadata dict, {name: ndarray}) in the file's tensor order."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a Beluga weights file (too short)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > MAX_HEADER or 8 + n > len(raw):
        raise ValueError(f"{path}: not a Beluga weights file (header of {n} bytes)")
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, want {FORMAT!r}")
    frac = int(meta["master_frac"])
    data = memoryview(raw)[8 + n :]
    out = {}
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dtype = {"I32": "<i4", "I64": "<i8"}.get(t["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has dtype {t['dtype']}")
        begin, end = t["data_offsets"]
        a = np.frombuffer(data[begin:end], dtype=dtype).reshape(t["shape"])
        if not momenta and name.endswith((".momentum", ".m", ".v")):
            continue
        out[name] = (a.astype(np.float64) / float(1 << frac)) if as_float else a
    return meta, out


def main(argv):
    summary = "--summary" in argv
    paths = [a for a in argv if not a.startswith("--")]
    if len(paths) != 1:
        print("usage: load_weights.py [--summary] FILE", file=sys.stderr)
        return 2
    meta, tensors = load(paths[0])
    if summary:
        print(json.dumps({
            "job_id": meta["job_id"],
            "step": int(meta["step"]),
            "state_digest": meta["state_digest"],
            "master_frac": int(meta["master_frac"]),
            "tensors": [
                {"name": k, "shape": list(v.shape), "first": int(v.flat[0])}
                for k, v in tensors.items()
            ],
        }))
        return 0
    print(f"job {meta['job_id']} at step {meta['step']}, digest {meta['state_digest']}")
    for k, v in tensors.items():
        f = v.astype(np.float64) / float(1 << int(meta["master_frac"]))
        print(f"  {k:28s} {str(list(v.shape)):14s} mean {f.mean():+.5f} std {f.std():.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
