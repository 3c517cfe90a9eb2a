#!/usr/bin/python3
"""The PyTorch peer of the engine benchmarks (bench/torch.ts runs it): the same work as ours,
measured in the same run, so the benchmarks can report a ratio.

Run it with Debian's /usr/bin/python3 (the python3 first on PATH may be another one). Needs
Debian's python3-torch and python3-torchvision (apt-get install -y python3-torch
python3-torchvision). Random weights: nothing is downloaded. Prints one JSON object.

  torch_reference.py features [--batch 8] [--images 160] [--threads 2]
      VGG16 conv base (torchvision vgg16().features) forward at 224x224: img/s.
  torch_reference.py block5 [--batch 8] [--steps 6] [--warmup 2] [--rounds 1] [--threads 2]
                            [--top dense2|vgg] [--optimizer sgd|adam] [--lr_mult 0.01,0.1,1,1]
      training steps of block5 + a top on cached block4_pool outputs ([N,512,14,14]): img/s
      of the best of --rounds rounds of --steps steps.
      --top dense2: a new 2-way Dense (what `finetune` with a new head trains);
      vgg: VGG16's fc1 + fc2 (no dropout, as Keras' VGG16) + a new 2-way Dense (what
      finetune-vgg16's `unfreeze: block5_conv1` trains). --lr_mult: one learning-rate factor per
      trained layer with weights, earliest first (a parameter group each, as pipe's lr_mult).
  torch_reference.py head [--features 23000] [--dim 4096] [--batch 64] [--threads 2]
      one epoch of a Dense(2) softmax top on cached 4096-float features: seconds.
"""
import argparse, json, time
import torch, torchvision

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["features", "block5", "head"])
p.add_argument("--batch", type=int, default=None, help="8 for features/block5, 64 for head")
p.add_argument("--images", type=int, default=160)
p.add_argument("--steps", type=int, default=6)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--rounds", type=int, default=1)
p.add_argument("--top", choices=["dense2", "vgg"], default="dense2")
p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
p.add_argument("--lr_mult", default=None, help="comma-separated, one per trained layer with weights")
p.add_argument("--features", type=int, default=23000)
p.add_argument("--dim", type=int, default=4096)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
if a.batch is None:
    a.batch = 64 if a.mode == "head" else 8
torch.set_num_threads(a.threads)
torch.manual_seed(0)
out = {"peer": "pytorch", "torch": torch.__version__, "threads": a.threads, "mode": a.mode}

if a.mode == "features":
    m = torchvision.models.vgg16(weights=None).features.eval()
    x = torch.randn(a.batch, 3, 224, 224)
    with torch.no_grad():
        m(x)
        t = time.perf_counter()
        n = 0
        while n < a.images:
            m(x)
            n += a.batch
        dt = time.perf_counter() - t
    out.update(batch=a.batch, images=n, seconds=dt, img_per_s=n / dt, gflops=n * 30.7 / dt)

elif a.mode == "block5":
    # block5_conv1..3 + pool as torchvision's vgg16().features[24:] (built alone: initialising
    # the whole VGG16 takes longer than the measurement); input [N,512,14,14].
    convs = [[torch.nn.Conv2d(512, 512, 3, padding=1), torch.nn.ReLU(inplace=True)] for _ in range(3)]
    block5 = torch.nn.Sequential(*[m for c in convs for m in c], torch.nn.MaxPool2d(2, 2))
    if a.top == "vgg":
        top = torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(512 * 7 * 7, 4096), torch.nn.ReLU(inplace=True),  # fc1
            torch.nn.Linear(4096, 4096), torch.nn.ReLU(inplace=True),  # fc2
            torch.nn.Linear(4096, 2),
        )
    else:
        top = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(512 * 7 * 7, 2))
    model = torch.nn.Sequential(block5, top).train()
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    mults = [float(v) for v in a.lr_mult.split(",")] if a.lr_mult else [1.0] * len(layers)
    if len(mults) != len(layers):
        raise SystemExit(f"--lr_mult has {len(mults)} factors for {len(layers)} trained layers")
    lr = 1e-3 if a.optimizer == "sgd" else 1e-4
    groups = [{"params": list(m.parameters()), "lr": lr * f} for m, f in zip(layers, mults)]
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9)
    else:
        opt = torch.optim.Adam(groups, lr=lr, eps=1e-7)  # tfjs' epsilon, as pipe's Adam
    x = torch.randn(a.batch, 512, 14, 14)
    y = torch.randint(0, 2, (a.batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    dt = float("inf")  # best of the rounds: this machine's speed drifts between seconds
    for _ in range(a.rounds):
        t = time.perf_counter()
        for _ in range(a.steps):
            step()
        dt = min(dt, time.perf_counter() - t)
    n = a.steps * a.batch
    out.update(
        batch=a.batch, top=a.top, optimizer=a.optimizer, lr_mult=mults, parameters=sum(p.numel() for p in model.parameters()),
        warmup_steps=a.warmup, steps=a.steps, rounds=a.rounds, images=n, seconds=dt, img_per_s=n / dt,
    )

else:
    x = torch.randn(a.features, a.dim)
    y = torch.randint(0, 2, (a.features,))
    top = torch.nn.Linear(a.dim, 2)
    opt = torch.optim.Adam(top.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    t = time.perf_counter()
    for i in range(0, a.features, a.batch):
        opt.zero_grad()
        loss = loss_fn(top(x[i:i + a.batch]), y[i:i + a.batch])
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t
    out.update(batch=a.batch, samples=a.features, epoch_seconds=dt)

print(json.dumps(out))
