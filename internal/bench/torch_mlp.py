# PyTorch peer for `beluga bench train`: the same MLP, batch and optimizer
# in float32 on the CPU. Prints one JSON object per thread count.
import json, sys, time

import torch

def main():
    steps, batch, warmup = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    threads = [int(t) for t in sys.argv[4].split(",")]
    # Debian's torch links libblas.so.3, which the alternatives system points
    # at OpenBLAS when libopenblas0-pthread is installed and at the slow
    # reference BLAS otherwise: report the library actually mapped.
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    blas = "unknown"
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in path.rsplit("/", 1)[-1]:
                import os
                blas = os.path.realpath(path)
                break
    torch.manual_seed(0)
    x = torch.rand(steps + warmup, batch, 784)
    y = torch.randint(0, 10, (steps + warmup, batch))
    for t in threads:
        torch.set_num_threads(t)
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()
        def step(i):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[i]), y[i])
            loss.backward()
            opt.step()
        for i in range(warmup):
            step(i)
        start = time.perf_counter()
        for i in range(warmup, warmup + steps):
            step(i)
        elapsed = time.perf_counter() - start
        print(json.dumps({"threads": t, "ms_per_step": elapsed * 1000 / steps,
                          "torch": torch.__version__, "blas": blas}), flush=True)

main()
