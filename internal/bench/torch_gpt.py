# PyTorch float32 peer for `beluga bench train --model gpt`: the float GPT
# whose function Beluga's integer GPT approximates (design: byte vocabulary,
# learned positions, pre-norm blocks with gain-free RMSnorm, causal attention,
# SiLU MLP, no biases; AdamW without bias correction, eps outside the sqrt,
# global-norm clip, decoupled decay on every parameter, piecewise-linear lr).
#
#   python3 torch_gpt.py DIR          run DIR/config.json (mode learn or time)
#   python3 torch_gpt.py --selftest   check the model and optimizer in float64
#
# DIR holds config.json, corpus.bin, train_offsets.bin (int64 LE [steps,
# batch]), val_offsets.bin (int64 LE [K]), init.bin (float32 LE, parameters in
# state order) and init.json ([{"name", "shape"}] in that order). Output: one
# JSON object per line on stdout; errors on stderr with a non-zero exit
# (3: torch is not importable).
import json
import math
import os
import resource
import subprocess
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the Go side maps exit 3 to "install python3-torch"
    print("torch is not importable: %s" % e, file=sys.stderr)
    sys.exit(3)

NORM_EPS = 1e-12  # the design's rmsnorm has no eps; this only avoids 0/0


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(2)


def param_shapes(cfg):
    """The parameters' names and shapes in the design's state order."""
    V, T, D, F_, L = cfg["vocab"], cfg["context"], cfg["d_model"], cfg["d_ff"], cfg["layers"]
    out = [("tok_emb", [V, D]), ("pos_emb", [T, D])]
    for l in range(L):
        out += [("blocks.%d.attn.qkv" % l, [3 * D, D]),
                ("blocks.%d.attn.out" % l, [D, D]),
                ("blocks.%d.mlp.up" % l, [F_, D]),
                ("blocks.%d.mlp.down" % l, [D, F_])]
    out.append(("head", [V, D]))
    return out


def rmsnorm(x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS)


def forward(params, tokens, heads):
    """Logits [B, T, V] of the design's forward pass for tokens [B, T]."""
    tok_emb, pos_emb, head = params[0], params[1], params[-1]
    B, T = tokens.shape
    D = tok_emb.shape[1]
    Dh = D // heads
    x = tok_emb[tokens] + pos_emb[:T]
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)  # True above the diagonal: future
    for l in range((len(params) - 3) // 4):
        qkv_w, out_w, up_w, down_w = params[2 + 4 * l: 6 + 4 * l]
        h = rmsnorm(x)
        qkv = h @ qkv_w.t()
        q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
        # [B, T, D] -> [B, H, T, Dh]: head h is columns [h*Dh, (h+1)*Dh).
        q = q.reshape(B, T, heads, Dh).transpose(1, 2)
        k = k.reshape(B, T, heads, Dh).transpose(1, 2)
        v = v.reshape(B, T, heads, Dh).transpose(1, 2)
        att = (q / math.sqrt(Dh)) @ k.transpose(-1, -2)  # = q kᵀ / sqrt(Dh), scaling T·Dh not T·T values
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, D)
        x = x + o @ out_w.t()
        h = rmsnorm(x)
        x = x + F.silu(h @ up_w.t()) @ down_w.t()
    return rmsnorm(x) @ head.t()


def loss_nats(params, tokens, targets, heads, reduction="mean"):
    logits = forward(params, tokens, heads)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction=reduction)


def lr_at(knots, t):
    """Piecewise linear through (step, value) knots; constant outside them."""
    if t <= knots[0][0]:
        return float(knots[0][1])
    for (s0, v0), (s1, v1) in zip(knots, knots[1:]):
        if t <= s1:
            return float(v0) + (float(v1) - float(v0)) * (t - s0) / (s1 - s0)
    return float(knots[-1][1])


class AdamW:
    """The design's optimizer: clip, no bias correction, eps outside the sqrt."""

    def __init__(self, params, cfg):
        self.params = params
        self.b1, self.b2, self.eps = cfg["beta1"], cfg["beta2"], cfg["eps"]
        self.wd, self.clip, self.knots = cfg["weight_decay"], cfg["clip"], cfg["lr"]
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, t):
        grads = [p.grad for p in self.params]
        norm = torch.sqrt(sum((g * g).sum() for g in grads)).item()
        if norm > self.clip:
            for g in grads:
                g.mul_(self.clip / norm)
        lr = lr_at(self.knots, t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            upd = m / (v.sqrt() + self.eps) + self.wd * p
            p.sub_(lr * upd)
            p.grad = None
        return norm


class Run:
    """A loaded DIR: config, windows and initial parameters."""

    def __init__(self, d):
        import numpy as np
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        self.cfg = cfg
        T, B, S = cfg["context"], cfg["batch"], cfg["steps"]
        if cfg["d_model"] % cfg["heads"]:
            fail("d_model %d is not a multiple of heads %d" % (cfg["d_model"], cfg["heads"]))
        corpus = np.fromfile(os.path.join(d, "corpus.bin"), dtype=np.uint8)
        if corpus.size and int(corpus.max()) >= cfg["vocab"]:
            fail("corpus byte %d is outside vocab %d" % (int(corpus.max()), cfg["vocab"]))
        train = np.fromfile(os.path.join(d, "train_offsets.bin"), dtype="<i8")
        val = np.fromfile(os.path.join(d, "val_offsets.bin"), dtype="<i8")
        if train.size != S * B:
            fail("train_offsets.bin holds %d offsets, want steps*batch = %d" % (train.size, S * B))
        if val.size == 0:
            fail("val_offsets.bin is empty")
        for name, o in (("train", train), ("val", val)):
            if o.min() < 0 or o.max() + T + 1 > corpus.size:
                fail("%s window outside the %d-byte corpus" % (name, corpus.size))
        ar = np.arange(T + 1)
        self.corpus = torch.from_numpy(corpus.astype(np.int64))
        self.train = torch.from_numpy(train.reshape(S, B)[:, :, None] + ar)  # [S, B, T+1] indices
        self.val = torch.from_numpy(val[:, None] + ar)  # [K, T+1]
        with open(os.path.join(d, "init.json")) as f:
            names = json.load(f)
        want = param_shapes(cfg)
        got = [(e["name"], list(e["shape"])) for e in names]
        if got != want:
            fail("init.json lists %s, want %s" % (got, want))
        flat = np.fromfile(os.path.join(d, "init.bin"), dtype="<f4")
        n = sum(math.prod(s) for _, s in want)
        if flat.size != n:
            fail("init.bin holds %d floats, want %d" % (flat.size, n))
        self.init, off = [], 0
        for _, s in want:
            k = math.prod(s)
            self.init.append(torch.from_numpy(flat[off:off + k].reshape(s).copy()))
            off += k

    def windows(self, idx):
        w = self.corpus[idx]
        return w[..., :-1], w[..., 1:]

    def fresh_params(self):
        return [p.clone().requires_grad_(True) for p in self.init]

    @torch.no_grad()
    def val_bpb(self, params, chunk=64):
        total, count = 0.0, 0
        for i in range(0, self.val.shape[0], chunk):
            x, y = self.windows(self.val[i:i + chunk])
            total += loss_nats(params, x, y, self.cfg["heads"], reduction="sum").item()
            count += y.numel()
        return total / count / math.log(2)

    def train_step(self, params, opt, t):
        x, y = self.windows(self.train[t % self.train.shape[0]])
        loss = loss_nats(params, x, y, self.cfg["heads"])
        loss.backward()
        opt.step(t)
        return loss.item()


def emit(obj):
    for k, v in obj.items():
        if isinstance(v, float) and not math.isfinite(v):
            fail("%s is %r at %s: training diverged" % (k, v, obj))
    print(json.dumps(obj), flush=True)


def learn(d):
    run = Run(d)
    cfg = run.cfg
    torch.set_num_threads(cfg["threads"][0])
    S, E = cfg["steps"], max(1, cfg["eval_every"])
    params = run.fresh_params()
    opt = AdamW(params, cfg)
    with torch.no_grad():
        x, y = run.windows(run.train[0])
        first = loss_nats(params, x, y, cfg["heads"]).item() / math.log(2)
    emit({"step": 0, "val_bpb": run.val_bpb(params), "train_loss_bpb": first})
    since = []
    for t in range(S):
        since.append(run.train_step(params, opt, t))
        done = t + 1
        if done % E == 0 or done == S:
            # train_loss_bpb: mean of the training losses (before each update) since the last line
            emit({"step": done, "val_bpb": run.val_bpb(params),
                  "train_loss_bpb": sum(since) / len(since) / math.log(2)})
            since = []


def blas_path():
    # Debian's torch links libblas.so.3, which the alternatives system points
    # at OpenBLAS when libopenblas0-pthread is installed and at the slow
    # reference BLAS otherwise: report the library actually mapped.
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in path.rsplit("/", 1)[-1]:
                return os.path.realpath(path)
    return "unknown"


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def time_one(d, threads):
    """One thread count, in its own process so peak RSS is this run's alone."""
    try:  # die with the parent (PR_SET_PDEATHSIG, SIGKILL) when a run is cancelled
        import ctypes
        ctypes.CDLL(None).prctl(1, 9)
    except (OSError, AttributeError):
        pass
    torch.set_num_threads(threads)
    run = Run(d)
    cfg = run.cfg
    base = rss_mib()
    params = run.fresh_params()
    opt = AdamW(params, cfg)
    W, S = cfg["warmup_steps"], cfg["steps"]
    for t in range(W):
        run.train_step(params, opt, t)
    start = time.perf_counter()
    for t in range(W, W + S):
        run.train_step(params, opt, t)
    elapsed = time.perf_counter() - start
    emit({"threads": threads, "ms_per_step": elapsed * 1000 / max(1, S),
          "peak_rss_mib": rss_mib(), "base_rss_mib": base,
          "torch": torch.__version__, "blas": blas_path()})


def time_all(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    for t in cfg["threads"]:
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--time-threads", str(t), d],
                           stdout=subprocess.PIPE)
        if p.returncode:
            sys.exit(p.returncode)
        sys.stdout.write(p.stdout.decode())
        sys.stdout.flush()


def selftest():
    """Float64 checks: autograd against finite differences, the forward pass
    against a loop-by-loop reference of the design, and one optimizer step
    against the design's formulas."""
    import numpy as np
    torch.manual_seed(1)
    cfg = {"vocab": 16, "context": 5, "d_model": 8, "layers": 2, "heads": 2, "d_ff": 12}  # small V: gradcheck perturbs every weight
    B, T, H = 2, 5, 2
    params = [(torch.randn(s, dtype=torch.float64) * 0.5).requires_grad_(True) for _, s in param_shapes(cfg)]
    tokens = torch.randint(0, 16, (B, T))
    targets = torch.randint(0, 16, (B, T))
    ok = torch.autograd.gradcheck(lambda *ps: loss_nats(list(ps), tokens, targets, H), params,
                                  eps=1e-6, atol=1e-6, rtol=1e-4)
    assert ok, "gradcheck failed"

    # Reference forward: explicit loops over batch, heads and positions.
    P = [p.detach().numpy() for p in params]

    def rms(x):
        return x / np.sqrt((x * x).mean())

    D, Dh = cfg["d_model"], cfg["d_model"] // H
    ref = 0.0
    for b in range(B):
        x = [P[0][tokens[b, i]] + P[1][i] for i in range(T)]
        for l in range(cfg["layers"]):
            qkv_w, out_w, up_w, down_w = P[2 + 4 * l: 6 + 4 * l]
            qkv = [qkv_w @ rms(xi) for xi in x]
            o = [np.zeros(D) for _ in range(T)]
            for h in range(H):
                c = slice(h * Dh, (h + 1) * Dh)
                for i in range(T):
                    q = qkv[i][:D][c]
                    s = np.array([q @ qkv[j][D:2 * D][c] / math.sqrt(Dh) for j in range(i + 1)])
                    a = np.exp(s - s.max())
                    a /= a.sum()
                    o[i][c] = sum(a[j] * qkv[j][2 * D:][c] for j in range(i + 1))
            x = [x[i] + out_w @ o[i] for i in range(T)]
            for i in range(T):
                u = up_w @ rms(x[i])
                x[i] = x[i] + down_w @ (u / (1 + np.exp(-u)))
        for i in range(T):
            z = P[-1] @ rms(x[i])
            ref += np.log(np.exp(z - z.max()).sum()) + z.max() - z[targets[b, i]]
    ref /= B * T
    got = loss_nats(params, tokens, targets, H).item()
    assert abs(got - ref) < 1e-9 * max(1, abs(ref)), "forward %r, reference %r" % (got, ref)

    # One optimizer step each with the clip active and inactive.
    knots = [[0, 0.0], [4, 1e-2], [10, 1e-3]]
    for t, want in ((-1, 0.0), (0, 0.0), (2, 5e-3), (4, 1e-2), (7, 5.5e-3), (10, 1e-3), (20, 1e-3)):
        assert abs(lr_at(knots, t) - want) < 1e-15, "lr(%d) = %r, want %r" % (t, lr_at(knots, t), want)
    ocfg = {"beta1": 58982 / 65536, "beta2": 62259 / 65536, "eps": 2.0 ** -22,
            "weight_decay": 0.1, "clip": 1.0, "lr": knots}
    for scale in (1e-3, 1.0):
        ps = [p.detach().clone().requires_grad_(True) for p in params]
        opt = AdamW(ps, ocfg)
        m0 = [np.random.RandomState(i).randn(*p.shape) * 1e-3 for i, p in enumerate(ps)]
        v0 = [np.random.RandomState(100 + i).rand(*p.shape) * 1e-4 for i, p in enumerate(ps)]
        for m, v, a, c in zip(opt.m, opt.v, m0, v0):
            m.copy_(torch.from_numpy(a))
            v.copy_(torch.from_numpy(c))
        (loss_nats(ps, tokens, targets, H) * scale).backward()
        g = [p.grad.numpy().copy() for p in ps]
        w0 = [p.detach().numpy().copy() for p in ps]
        norm = math.sqrt(sum((x * x).sum() for x in g))
        assert (norm > 1) == (scale == 1.0), "test case should %sclip (norm %g)" % ("" if scale == 1 else "not ", norm)
        if norm > 1:
            g = [x / norm for x in g]
        opt.step(7)
        lr = lr_at(knots, 7)
        for i, p in enumerate(ps):
            m = ocfg["beta1"] * m0[i] + (1 - ocfg["beta1"]) * g[i]
            v = ocfg["beta2"] * v0[i] + (1 - ocfg["beta2"]) * g[i] ** 2
            w = w0[i] - lr * (m / (np.sqrt(v) + ocfg["eps"]) + ocfg["weight_decay"] * w0[i])
            assert np.abs(p.detach().numpy() - w).max() < 1e-12, "optimizer step differs on parameter %d" % i
    emit({"selftest": "ok", "loss": got, "reference": ref})


def main():
    args = sys.argv[1:]
    if args == ["--selftest"]:
        selftest()
    elif len(args) == 3 and args[0] == "--time-threads":
        time_one(args[2], int(args[1]))
    elif len(args) == 1:
        with open(os.path.join(args[0], "config.json")) as f:
            mode = json.load(f).get("mode")
        if mode == "learn":
            learn(args[0])
        elif mode == "time":
            time_all(args[0])
        else:
            fail("config.json mode %r: want \"learn\" or \"time\"" % mode)
    else:
        fail("usage: torch_gpt.py DIR | --selftest")


main()
