# PyTorch CUDA peer for `beluga bench vulkan`: MLP 784-256-128-10 with SGD
# and momentum, eager mode, in float32 and with bf16 autocast, on the
# first CUDA device. Batches live on the device before timing (the
# fastest case for the peer). Prints one JSON object per batch and mode.
import json, sys, time

import torch

def main():
    steps, warmup = int(sys.argv[1]), int(sys.argv[2])
    batches = [int(b) for b in sys.argv[3].split(",")]
    if not torch.cuda.is_available():
        sys.exit("torch.cuda.is_available() is False: no CUDA device for the peer")
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(0)
    torch.manual_seed(0)
    for batch in batches:
        pool = 8
        x = torch.rand(pool, batch, 784, device=dev)
        y = torch.randint(0, 10, (pool, batch), device=dev)
        for mode in ("float32", "bf16 autocast"):
            model = torch.nn.Sequential(
                torch.nn.Linear(784, 256), torch.nn.ReLU(),
                torch.nn.Linear(256, 128), torch.nn.ReLU(),
                torch.nn.Linear(128, 10)).to(dev)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            loss_fn = torch.nn.CrossEntropyLoss()
            def step(i):
                opt.zero_grad(set_to_none=True)
                if mode == "float32":
                    loss = loss_fn(model(x[i % pool]), y[i % pool])
                else:
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        loss = loss_fn(model(x[i % pool]), y[i % pool])
                loss.backward()
                opt.step()
            for i in range(warmup):
                step(i)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for i in range(steps):
                step(i)
            torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            print(json.dumps({"batch": batch, "mode": mode, "ms_per_step": elapsed * 1000 / steps,
                              "torch": torch.__version__, "device": name}), flush=True)

main()
