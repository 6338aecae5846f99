#!/usr/bin/env python3
"""PyTorch's side of the GPU kernel benchmark: the shapes kpt_gpu_bench times, timed the same
way (CUDA events, median of 20 launches after 3 warm-ups, random inputs), so the two tables can
be read side by side. Attention runs scaled_dot_product_attention restricted to the flash
backend (and, for reference, the cuDNN backend where it is available).

usage: gpu_bench_torch.py [--json FILE] [--quick] [--attention]
"""
import argparse
import json

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def time_ms(fn, warmup=3, reps=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def bench_attention(rows, quick):
    att = [(torch.bfloat16, 2, 16, 4096, 128), (torch.bfloat16, 4, 32, 4096, 128),
           (torch.bfloat16, 4, 32, 4096, 64), (torch.float16, 4, 32, 4096, 128),
           (torch.float16, 32, 12, 128, 64), (torch.float16, 1, 12, 512, 64)]
    if quick:
        att = att[:1]
    for dt, b, h, s, d in att:
        q = torch.randn(b, h, s, d, device="cuda", dtype=dt)
        k = torch.randn(b, h, s, d, device="cuda", dtype=dt)
        v = torch.randn(b, h, s, d, device="cuda", dtype=dt)
        for causal in (False, True):
            flops = 4 * b * h * s * s * d / (2 if causal else 1)
            for backend, bname in ((SDPBackend.FLASH_ATTENTION, "flash"),
                                   (SDPBackend.CUDNN_ATTENTION, "cudnn")):
                try:
                    with sdpa_kernel(backend):
                        ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
                except RuntimeError as e:
                    print(f"sdpa {bname} unavailable: {str(e).splitlines()[0]}")
                    continue
                name = f"sdpa {bname} {'bf16' if dt == torch.bfloat16 else 'f16'}" + (" causal" if causal else "")
                rows.append((name, f"B{b} H{h} S{s} D{d}", ms, flops / ms / 1e9, 0.0))


def print_rows(rows, dev, json_path):
    print(f"{'kernel':34} {'shape':26} {'ms':>10} {'TFLOP/s':>10} {'GB/s':>10}")
    for r in rows:
        print(f"{r[0]:34} {r[1]:26} {r[2]:10.4f} {r[3]:10.1f} {r[4]:10.1f}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"device": dev, "torch": torch.__version__,
                       "results": [dict(zip(("kernel", "shape", "ms", "tflops", "gbps"), r)) for r in rows]},
                      f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--attention", action="store_true", help="the attention rows alone")
    args = ap.parse_args()
    dev = torch.cuda.get_device_name()
    print(f"device: {dev}, torch {torch.__version__}")
    rows = []
    if args.attention:
        bench_attention(rows, args.quick)
        print_rows(rows, dev, args.json)
        return

    n = 1 << 30
    src = torch.randint(0, 255, (n,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src))
    rows.append(("torch copy d2d", "1 GiB", ms, 0.0, 2 * n / ms / 1e6))
    del src, dst

    big = 4096 if args.quick else 8192
    for dt, name in ((torch.bfloat16, "bf16"), (torch.float16, "f16"), (torch.float32, "tf32")):
        torch.backends.cuda.matmul.allow_tf32 = dt == torch.float32
        a = torch.randn(big, big, device="cuda", dtype=dt)
        b = torch.randn(big, big, device="cuda", dtype=dt)
        ms = time_ms(lambda: torch.matmul(a, b.t()))
        rows.append((f"torch.matmul {name}", f"{big}^3", ms, 2 * big**3 / ms / 1e9, 0.0))
    torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(4096, 768, device="cuda", dtype=torch.float16)
    w = torch.randn(3072, 768, device="cuda", dtype=torch.float16) * 0.05
    bias = torch.randn(3072, device="cuda", dtype=torch.float16) * 0.1
    ms = time_ms(lambda: F.gelu(F.linear(a, w, bias), approximate="tanh"))
    rows.append(("torch linear+gelu f16", "4096x3072x768", ms, 2 * 4096 * 3072 * 768 / ms / 1e9, 0.0))

    for fast in (False, True):
        a = (torch.randn(big, big, device="cuda") * 100).to(torch.float8_e4m3fn)
        b = (torch.randn(big, big, device="cuda") * 100).to(torch.float8_e4m3fn)
        sa = torch.tensor(0.01, device="cuda")
        sb = torch.tensor(0.01, device="cuda")
        ms = time_ms(lambda: torch._scaled_mm(a, b.t(), scale_a=sa, scale_b=sb,
                                              out_dtype=torch.bfloat16, use_fast_accum=fast))
        name = "torch._scaled_mm fp8" + (" (fast accum)" if fast else "")
        rows.append((name, f"{big}^3", ms, 2 * big**3 / ms / 1e9, 0.0))

    bench_attention(rows, args.quick)

    print_rows(rows, dev, args.json)


if __name__ == "__main__":
    main()
