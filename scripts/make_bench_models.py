"""Exports benchmark-sized PyTorch models with Debian's PyTorch (TorchScript-based exporter,
opset 17, dynamic batch and sequence axes, seeded random weights):

    OUT/<name>/model.onnx
    OUT/<name>/test_data_set_0/{input_K,output_K}.pb      (with --with-reference)

The reference data (batch 2, sequence 16; for BERT the second row is padded) is laid out like
the ONNX conformance cases, so `kpt conformance OUT --rtol 1e-3 --atol 1e-4` checks kpt against
PyTorch. The attention blocks are written the ways users write them (Hugging Face style explicit
matmul/softmax with additive or `torch.where` masks, and `nn.MultiheadAttention`), because the
graph optimizer must recognize each of them.

usage: make_bench_models.py OUT_DIR [--only NAME] [--skip-existing] [--with-reference]"""
import argparse
import math
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

D_MODEL, HEADS, FFN, LAYERS = 768, 12, 3072, 12
BERT_VOCAB, GPT_VOCAB, MAX_POS = 30522, 50257, 1024


def init_weights(module):
    """Hugging Face's initialization: small normal weights keep 12-layer activations tame."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.MultiheadAttention):
            nn.init.normal_(m.in_proj_weight, std=0.02)
            nn.init.zeros_(m.in_proj_bias)
    return module


class ExplicitSelfAttention(nn.Module):
    """Hugging Face BERT/GPT-2 style: Q/K/V Linear, view/permute, matmul / sqrt(d), mask,
    softmax, matmul."""

    def __init__(self, causal):
        super().__init__()
        self.head_dim = D_MODEL // HEADS
        self.query = nn.Linear(D_MODEL, D_MODEL)
        self.key = nn.Linear(D_MODEL, D_MODEL)
        self.value = nn.Linear(D_MODEL, D_MODEL)
        self.out = nn.Linear(D_MODEL, D_MODEL)
        self.causal = causal
        if causal:
            tril = torch.tril(torch.ones(MAX_POS, MAX_POS, dtype=torch.bool))
            self.register_buffer("bias", tril.view(1, 1, MAX_POS, MAX_POS))

    def heads(self, x):
        b, s, _ = x.size()
        return x.view(b, s, HEADS, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, additive_mask=None):
        q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if self.causal:
            q_len, k_len = q.size(-2), k.size(-2)
            mask = self.bias[:, :, k_len - q_len:k_len, :k_len]
            min_value = torch.tensor(torch.finfo(scores.dtype).min, dtype=scores.dtype)
            scores = torch.where(mask, scores, min_value)
        if additive_mask is not None:
            scores = scores + additive_mask
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return self.out(ctx.view(ctx.size(0), ctx.size(1), D_MODEL))


class BertLayer(nn.Module):
    """Post-LayerNorm encoder layer; attention either explicit or nn.MultiheadAttention."""

    def __init__(self, use_mha):
        super().__init__()
        self.use_mha = use_mha
        if use_mha:
            self.attn = nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True)
        else:
            self.attn = ExplicitSelfAttention(causal=False)
        self.norm1 = nn.LayerNorm(D_MODEL, eps=1e-12)
        self.ff1 = nn.Linear(D_MODEL, FFN)
        self.ff2 = nn.Linear(FFN, D_MODEL)
        self.norm2 = nn.LayerNorm(D_MODEL, eps=1e-12)

    def forward(self, x, mask):
        if self.use_mha:
            a, _ = self.attn(x, x, x, key_padding_mask=mask, need_weights=False)
        else:
            a = self.attn(x, mask)
        x = self.norm1(x + a)
        return self.norm2(x + self.ff2(nn.functional.gelu(self.ff1(x))))


class Bert(nn.Module):
    def __init__(self, use_mha):
        super().__init__()
        self.use_mha = use_mha
        self.word = nn.Embedding(BERT_VOCAB, D_MODEL)
        self.position = nn.Embedding(512, D_MODEL)
        self.token_type = nn.Embedding(2, D_MODEL)
        self.norm = nn.LayerNorm(D_MODEL, eps=1e-12)
        self.layers = nn.ModuleList([BertLayer(use_mha) for _ in range(LAYERS)])
        self.register_buffer("position_ids", torch.arange(512).view(1, -1))
        self.register_buffer("token_type_ids", torch.zeros(1, 512, dtype=torch.long))

    def forward(self, input_ids, attention_mask):
        s = input_ids.size(1)
        x = (self.word(input_ids) + self.position(self.position_ids[:, :s]) +
             self.token_type(self.token_type_ids[:, :s]))
        x = self.norm(x)
        if self.use_mha:
            mask = attention_mask == 0  # key_padding_mask: True where padded
        else:
            mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask)
        return x


class GptBlock(nn.Module):
    """Pre-LayerNorm decoder block; causal attention explicit or nn.MultiheadAttention."""

    def __init__(self, use_mha):
        super().__init__()
        self.use_mha = use_mha
        self.norm1 = nn.LayerNorm(D_MODEL)
        if use_mha:
            self.attn = nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True)
        else:
            self.attn = ExplicitSelfAttention(causal=True)
        self.norm2 = nn.LayerNorm(D_MODEL)
        self.ff1 = nn.Linear(D_MODEL, FFN)
        self.ff2 = nn.Linear(FFN, D_MODEL)

    def forward(self, x, causal_mask):
        h = self.norm1(x)
        if self.use_mha:
            a, _ = self.attn(h, h, h, attn_mask=causal_mask, need_weights=False)
        else:
            a = self.attn(h)
        x = x + a
        return x + self.ff2(nn.functional.gelu(self.ff1(self.norm2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, use_mha):
        super().__init__()
        self.use_mha = use_mha
        self.word = nn.Embedding(GPT_VOCAB, D_MODEL)
        self.position = nn.Embedding(MAX_POS, D_MODEL)
        self.blocks = nn.ModuleList([GptBlock(use_mha) for _ in range(LAYERS)])
        self.norm = nn.LayerNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, GPT_VOCAB, bias=False)
        self.register_buffer("position_ids", torch.arange(MAX_POS).view(1, -1))
        if use_mha:
            # Float causal mask as nn.Transformer.generate_square_subsequent_mask builds it.
            upper = torch.triu(torch.full((MAX_POS, MAX_POS), float("-inf")), diagonal=1)
            self.register_buffer("causal", upper)

    def forward(self, input_ids):
        s = input_ids.size(1)
        x = self.word(input_ids) + self.position(self.position_ids[:, :s])
        mask = self.causal[:s, :s] if self.use_mha else None
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x))


def token_inputs(vocab, with_mask):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (2, 16), generator=g, dtype=torch.long)
    if not with_mask:
        return (ids,)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 11:] = 0  # the second row is padded
    return ids, mask


def models():
    import torchvision

    tokens = {0: "batch", 1: "sequence"}
    bert = (["input_ids", "attention_mask"], lambda: token_inputs(BERT_VOCAB, True),
            {"input_ids": tokens, "attention_mask": tokens,
             "last_hidden_state": {0: "batch", 1: "sequence"}}, ["last_hidden_state"])
    gpt = (["input_ids"], lambda: token_inputs(GPT_VOCAB, False),
           {"input_ids": tokens, "logits": {0: "batch", 1: "sequence"}}, ["logits"])
    return {
        "resnet50": (lambda: torchvision.models.resnet50(weights=None), ["pixel_values"],
                     lambda: (torch.randn(2, 3, 224, 224,
                                          generator=torch.Generator().manual_seed(1)),),
                     {"pixel_values": {0: "batch"}, "logits": {0: "batch"}}, ["logits"]),
        "bert_base": (lambda: init_weights(Bert(use_mha=False)),) + bert,
        "bert_base_mha": (lambda: init_weights(Bert(use_mha=True)),) + bert,
        "gpt_small": (lambda: init_weights(Gpt(use_mha=False)),) + gpt,
        "gpt_small_mha": (lambda: init_weights(Gpt(use_mha=True)),) + gpt,
    }


def write(path, name, tensor):
    proto = numpy_helper.from_array(tensor.detach().numpy(), name)
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())


def export(name, spec, root, skip_existing, with_reference):
    make, input_names, make_inputs, dynamic, output_names = spec
    folder = os.path.join(root, name)
    path = os.path.join(folder, "model.onnx")
    data = os.path.join(folder, "test_data_set_0")
    done = os.path.exists(path) and (not with_reference or
                                      os.path.exists(os.path.join(data, "output_0.pb")))
    if skip_existing and done:
        print(f"{name}: exists, skipped", flush=True)
        return
    start = time.time()
    print(f"{name}: building", flush=True)
    torch.manual_seed(0)
    model = make().eval()
    inputs = make_inputs()
    os.makedirs(folder, exist_ok=True)
    print(f"{name}: exporting ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params)",
          flush=True)
    # Exported with autograd on: under no_grad nn.MultiheadAttention takes its fused fast path,
    # which the ONNX exporter cannot write.
    torch.onnx.export(model, inputs, path, input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic, opset_version=17)
    onnx.checker.check_model(path)
    if with_reference:
        print(f"{name}: reference outputs", flush=True)
        os.makedirs(data, exist_ok=True)
        with torch.no_grad():
            outputs = model(*inputs)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        for i, (n, t) in enumerate(zip(input_names, inputs)):
            write(os.path.join(data, f"input_{i}.pb"), n, t)
        for i, (n, t) in enumerate(zip(output_names, outputs)):
            write(os.path.join(data, f"output_{i}.pb"), n, t)
    size = os.path.getsize(path) / 1e6
    print(f"{name}: wrote {path} ({size:.0f} MB) in {time.time() - start:.0f} s", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--only", action="append", help="export only this model (repeatable)")
    p.add_argument("--skip-existing", action="store_true")
    p.add_argument("--with-reference", action="store_true",
                   help="also write PyTorch's outputs as test_data_set_0 for kpt conformance")
    args = p.parse_args()
    specs = models()
    for n in args.only or []:
        if n not in specs:
            sys.exit(f"unknown model '{n}'; expected one of {', '.join(specs)}")
    torch.set_num_threads(2)
    for name, spec in specs.items():
        if not args.only or name in args.only:
            export(name, spec, args.out_dir, args.skip_existing, args.with_reference)


if __name__ == "__main__":
    main()
