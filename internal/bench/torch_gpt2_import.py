# PyTorch float32 GPT-2 for `beluga bench import`: trains a small
# GPT-2-architecture byte-level model (LayerNorm with gain and bias, biased
# Conv1D-style linears stored [in, out], tanh GELU, learned positions, head
# tied to the token embedding) for a fixed time, saves it as a Hugging Face
# style checkpoint (model.safetensors with GPT-2's tensor names, config.json),
# and writes its float32 logits over the validation windows, which the Go
# side compares with Beluga's integer model imported from the same file
# (SPEC.md §22).
#
#   python3 torch_gpt2_import.py DIR
#
# DIR holds job.json ({"context", "dim", "layers", "heads", "ff", "seconds",
# "seed", "batch", "lr", "n_train", "threads"}), corpus.bin and
# val_offsets.bin (int64 LE window starts). Output: DIR/model.safetensors,
# DIR/config.json, DIR/reference.bin (float32 LE logits [K, T, 256]) and one
# JSON line on stdout. Exit 3: torch is not importable.
import json
import math
import os
import struct
import sys
import time

try:
    import torch
except ImportError as e:
    print("torch is not importable: %s" % e, file=sys.stderr)
    sys.exit(3)


def layer_norm(x, g, b):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), g, b, 1e-5)


def gelu_new(u):
    return 0.5 * u * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (u + 0.044715 * u * u * u)))


def params(cfg, gen):
    """GPT-2's parameters under Hugging Face's names, GPT-2's init."""
    V, T, D, L, F = 256, cfg["context"], cfg["dim"], cfg["layers"], cfg["ff"]
    P = {}

    def normal(shape, sd):
        return (torch.randn(*shape, generator=gen) * sd).requires_grad_()

    P["wte.weight"] = normal((V, D), 0.02)
    P["wpe.weight"] = normal((T, D), 0.01)
    proj_sd = 0.02 / math.sqrt(2 * L)
    for l in range(L):
        p = "h.%d." % l
        P[p + "ln_1.weight"] = torch.ones(D, requires_grad=True)
        P[p + "ln_1.bias"] = torch.zeros(D, requires_grad=True)
        P[p + "attn.c_attn.weight"] = normal((D, 3 * D), 0.02)
        P[p + "attn.c_attn.bias"] = torch.zeros(3 * D, requires_grad=True)
        P[p + "attn.c_proj.weight"] = normal((D, D), proj_sd)
        P[p + "attn.c_proj.bias"] = torch.zeros(D, requires_grad=True)
        P[p + "ln_2.weight"] = torch.ones(D, requires_grad=True)
        P[p + "ln_2.bias"] = torch.zeros(D, requires_grad=True)
        P[p + "mlp.c_fc.weight"] = normal((D, F), 0.02)
        P[p + "mlp.c_fc.bias"] = torch.zeros(F, requires_grad=True)
        P[p + "mlp.c_proj.weight"] = normal((F, D), proj_sd)
        P[p + "mlp.c_proj.bias"] = torch.zeros(D, requires_grad=True)
    P["ln_f.weight"] = torch.ones(D, requires_grad=True)
    P["ln_f.bias"] = torch.zeros(D, requires_grad=True)
    return P


def forward(P, tokens, cfg):
    """Logits [B, T, 256] for tokens [B, T]: GPT-2's forward pass."""
    B, T = tokens.shape
    D, H, L = cfg["dim"], cfg["heads"], cfg["layers"]
    Dh = D // H
    x = P["wte.weight"][tokens] + P["wpe.weight"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    for l in range(L):
        p = "h.%d." % l
        h = layer_norm(x, P[p + "ln_1.weight"], P[p + "ln_1.bias"])
        qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
        q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
        q = q.reshape(B, T, H, Dh).transpose(1, 2)
        k = k.reshape(B, T, H, Dh).transpose(1, 2)
        v = v.reshape(B, T, H, Dh).transpose(1, 2)
        att = (q / math.sqrt(Dh)) @ k.transpose(-1, -2)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, D)
        x = x + o @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
        h = layer_norm(x, P[p + "ln_2.weight"], P[p + "ln_2.bias"])
        u = h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"]
        x = x + gelu_new(u) @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
    x = layer_norm(x, P["ln_f.weight"], P["ln_f.bias"])
    return x @ P["wte.weight"].t()


def save_safetensors(path, P):
    """P as safetensors: F32 little-endian, names sorted, header padded."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(P):
        t = P[name].detach().contiguous().to(torch.float32)
        b = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    d = sys.argv[1]
    cfg = json.load(open(os.path.join(d, "job.json")))
    torch.set_num_threads(max(1, cfg.get("threads", 1)))
    corpus = torch.frombuffer(bytearray(open(os.path.join(d, "corpus.bin"), "rb").read()), dtype=torch.uint8).long()
    val = torch.frombuffer(bytearray(open(os.path.join(d, "val_offsets.bin"), "rb").read()), dtype=torch.int64)
    T, B, n_train = cfg["context"], cfg["batch"], cfg["n_train"]
    gen = torch.Generator().manual_seed(cfg["seed"])
    P = params(cfg, gen)
    decay = [p for n, p in P.items() if n.endswith("weight") and p.dim() == 2]
    other = [p for n, p in P.items() if not (n.endswith("weight") and p.dim() == 2)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=cfg["lr"], betas=(0.9, 0.95))
    start, steps, loss_v = time.time(), 0, float("nan")
    idx = torch.arange(T + 1)
    while time.time() - start < cfg["seconds"]:
        starts = torch.randint(0, n_train - T, (B,), generator=gen)
        w = corpus[starts[:, None] + idx]
        for g in opt.param_groups:
            g["lr"] = cfg["lr"] * min(1.0, (steps + 1) / 50)
        logits = forward(P, w[:, :T], cfg)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), w[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
        opt.step()
        steps += 1
        loss_v = loss.item()
    train_s = time.time() - start
    save_safetensors(os.path.join(d, "model.safetensors"), P)
    json.dump({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 256,
               "n_positions": T, "n_embd": cfg["dim"], "n_layer": cfg["layers"], "n_head": cfg["heads"],
               "n_inner": cfg["ff"], "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
               "tie_word_embeddings": True}, open(os.path.join(d, "config.json"), "w"))
    nll, n = 0.0, 0
    with torch.no_grad(), open(os.path.join(d, "reference.bin"), "wb") as f:
        for i in range(0, len(val), 16):
            w = corpus[val[i:i + 16, None] + idx]
            logits = forward(P, w[:, :T], cfg)
            f.write(logits.to(torch.float32).numpy().astype("<f4").tobytes())
            nll += torch.nn.functional.cross_entropy(logits.reshape(-1, 256), w[:, 1:].reshape(-1), reduction="sum").item()
            n += w.shape[0] * T
    print(json.dumps({"steps": steps, "train_seconds": train_s, "train_loss": loss_v,
                      "val_bpb": nll / n / math.log(2), "torch": torch.__version__,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
