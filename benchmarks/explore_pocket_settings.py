"""How the pocket profile's setting was chosen: learning curves for many candidate settings.

Not a benchmark of speed and not used by the book: it produced
``benchmarks/results/pocket_exploration.csv`` (README, *The pocket setting*). Each candidate
trains one model with Adam and no learning-rate schedule, evaluating the validation micro-AP
every ``eval_every`` optimiser steps, on a feature file made by the pocket recipe; runs are
spread over processes (CUDA or CPU, one thread each).

    python benchmarks/explore_pocket_settings.py CONFIGS.json FEATDIR OUTDIR WORKERS DEVICE [CPU_WORKERS]

Each config: model, width, time_pool, mel_pool, batch, lr, steps, eval_every, seed, snr, fold
(optional: alpha, n_train, where = "cpu" for the CPU workers). The initialisation fix of issue
11 (attention linears keep PyTorch's default init, Atrous AP's attention conv starts at zero) is
applied here because the exploration ran before it was merged; the library now does the same.
"""

import json
import os
import sys
import time


def run(cfg, featdir, device):
    import torch
    from torch import nn
    from torch.nn import functional as F

    from paperlib.metrics import clip_metrics
    from paperlib.models import build_model
    from paperlib.run import load_split

    torch.set_num_threads(1)
    split = load_split(
        f"{featdir}/snr{cfg['snr']}db.h5",
        cfg["fold"],
        time_pool=cfg["time_pool"],
        mel_pool=cfg["mel_pool"],
    )
    xtr, ytr = split.x_train, split.y_train
    if cfg.get("n_train"):
        xtr, ytr = xtr[: cfg["n_train"]], ytr[: cfg["n_train"]]
    torch.manual_seed(cfg["seed"])
    net = build_model(
        cfg["model"],
        num_classes=41,
        time_steps=xtr.shape[1],
        mel_bins=xtr.shape[2],
        width=cfg["width"],
    )
    if cfg.get("init", "authors_fixed") == "authors_fixed":
        for _name, mod in net.named_modules():
            if isinstance(mod, nn.Linear):
                mod.reset_parameters()
        if cfg["model"] == "AtrousAP":
            with torch.no_grad():
                net.head.attention.weight.zero_()
    dev = torch.device(device)
    net = net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    xt = torch.from_numpy(xtr).to(dev)
    yt = torch.from_numpy(ytr).to(dev)
    xv = torch.from_numpy(split.x_val).to(dev)
    alpha = cfg.get("alpha", 0.001) if cfg["model"] == "2APAE" else 0.0
    g = torch.Generator().manual_seed(cfg["seed"])
    curve = []
    step = 0
    t0 = time.perf_counter()
    best = 0.0
    while step < cfg["steps"]:
        order = torch.randperm(len(xt), generator=g)
        for s in range(0, len(xt) - cfg["batch"] + 1, cfg["batch"]):
            idx = order[s : s + cfg["batch"]].to(dev)
            net.train()
            out = net(xt[idx])
            p = out["clip_probs"].float().clamp(0, 1)
            loss = F.binary_cross_entropy(p, yt[idx])
            if alpha:
                loss = loss + alpha * F.mse_loss(out["reconstruction"].float(), xt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % cfg["eval_every"] == 0 or step == cfg["steps"]:
                net.eval()
                with torch.no_grad():
                    sc = torch.cat(
                        [net(xv[i : i + 64])["clip_probs"].float() for i in range(0, len(xv), 64)]
                    )
                m = clip_metrics(split.y_val, sc.clamp(0, 1).cpu().numpy())
                best = max(best, m.micro_ap)
                curve.append((step, float(loss.item()), m.micro_ap, time.perf_counter() - t0))
            if step >= cfg["steps"]:
                break
    prior = ytr.mean(0, keepdims=True).repeat(len(split.y_val), 0)
    chance = max(float(split.y_val.mean()), clip_metrics(split.y_val, prior).micro_ap)
    return {
        "cfg": cfg,
        "curve": curve,
        "best": best,
        "chance": chance,
        "n_train": len(xtr),
        "n_val": len(xv),
    }


def worker(args):
    _i, cfgs, featdir, outdir, device = args
    os.environ["OMP_NUM_THREADS"] = "1"
    results = []
    for cfg in cfgs:
        try:
            r = run(cfg, featdir, device)
        except Exception as e:
            r = {"cfg": cfg, "error": repr(e)}
        results.append(r)
        with open(f"{outdir}/all.jsonl", "a") as fh:
            fh.write(json.dumps(r) + "\n")
        print(
            cfg.get("tag", ""),
            cfg["model"],
            r.get("best"),
            r.get("chance"),
            r.get("error", ""),
            flush=True,
        )
    return results


if __name__ == "__main__":
    import multiprocessing as mp

    cfgs = json.load(open(sys.argv[1]))
    featdir, outdir, workers, device = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    os.makedirs(outdir, exist_ok=True)
    cheap = [c for c in cfgs if c.get("where") == "cpu"]
    heavy = [c for c in cfgs if c.get("where") != "cpu"]
    ncpu = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    jobs = [(i, heavy[i::workers], featdir, outdir, device) for i in range(workers)]
    jobs += [(workers + i, cheap[i::ncpu], featdir, outdir, "cpu") for i in range(ncpu)]
    ctx = mp.get_context("spawn")
    with ctx.Pool(len(jobs)) as pool:
        pool.map(worker, jobs)
