"""Exports real PyTorch models with Debian's PyTorch (TorchScript-based exporter) and their
PyTorch outputs on seeded random inputs, laid out like the ONNX conformance cases:

    OUT/pytorch-models/<name>/model.onnx
    OUT/pytorch-models/<name>/test_data_set_0/{input_K,output_K}.pb

so that `kpt conformance OUT` compares kpt's outputs with PyTorch's. Skips models that exist."""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper


class TransformerClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128,
                                           dropout=0.0, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(64)
        self.head = nn.Linear(64, 8)

    def forward(self, x):
        return self.head(self.norm(self.encoder(x)).mean(dim=1))


class LstmTagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(16, 32, num_layers=2, bidirectional=True)
        self.out = nn.Linear(64, 5)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.out(y)


class GruEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(12, 24, batch_first=True)

    def forward(self, x):
        y, h = self.gru(x)
        return y, h


class MlpMixer(nn.Module):
    """Elementwise-heavy block: LayerNorm, GELU, residuals, softmax."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(32)
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 32)

    def forward(self, x):
        h = x + self.fc2(nn.functional.gelu(self.fc1(self.norm(x))))
        return torch.softmax(h, dim=-1)


class CausalSelfAttention(nn.Module):
    """GPT-2 style: causal attention that also honours a padding mask, by torch.where."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x, keep):
        b, s, d = x.size()
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (t.view(b, s, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (self.head_dim ** 0.5)
        scores = torch.where(keep, scores, torch.tensor(torch.finfo(scores.dtype).min))
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, s, d)
        return self.out(ctx)


class CausalLmWithMask(nn.Module):
    """A small GPT: token and position embeddings, pre-LayerNorm blocks, LM head; takes an
    attention_mask like Hugging Face's GPT-2, so padded batches are served (shape buckets)."""

    def __init__(self, vocab=100, d=64, heads=4, layers=2, max_pos=128):
        super().__init__()
        self.word = nn.Embedding(vocab, d)
        self.position = nn.Embedding(max_pos, d)
        self.norms1 = nn.ModuleList([nn.LayerNorm(d) for _ in range(layers)])
        self.attns = nn.ModuleList([CausalSelfAttention(d, heads) for _ in range(layers)])
        self.norms2 = nn.ModuleList([nn.LayerNorm(d) for _ in range(layers)])
        self.mlps = nn.ModuleList([nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"),
                                                 nn.Linear(4 * d, d)) for _ in range(layers)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.register_buffer("causal", torch.tril(torch.ones(max_pos, max_pos, dtype=torch.bool)))
        self.register_buffer("position_ids", torch.arange(max_pos).view(1, -1))

    def forward(self, input_ids, attention_mask):
        s = input_ids.size(1)
        x = self.word(input_ids) + self.position(self.position_ids[:, :s])
        keep = self.causal[None, None, :s, :s] & (attention_mask[:, None, None, :] > 0)
        for n1, attn, n2, mlp in zip(self.norms1, self.attns, self.norms2, self.mlps):
            x = x + attn(n1(x), keep)
            x = x + mlp(n2(x))
        return self.head(self.norm(x))


class RotarySelfAttention(nn.Module):
    """Llama style: Q and K rotated by rotate_half with cos/sin of the positions, causal."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))

    def forward(self, x, cos, sin, causal):
        b, s, d = x.size()
        q, k, v = (t.view(b, s, self.heads, self.head_dim).transpose(1, 2)
                   for t in (self.q(x), self.k(x), self.v(x)))

        def rotate_half(t):
            h = t.shape[-1] // 2
            return torch.cat((-t[..., h:], t[..., :h]), dim=-1)

        q = q * cos.unsqueeze(1) + rotate_half(q) * sin.unsqueeze(1)
        k = k * cos.unsqueeze(1) + rotate_half(k) * sin.unsqueeze(1)
        scores = torch.matmul(q, k.transpose(-1, -2)) / (self.head_dim ** 0.5) + causal
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, s, d)
        return self.o(ctx)


class RotaryLm(nn.Module):
    """A small Llama-like decoder: rotary position embedding from position_ids (1, seq) shared
    by the batch, as Llama exports pass them; kpt fuses RotaryEmbedding and Attention."""

    def __init__(self, vocab=100, d=64, heads=4, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.norms = nn.ModuleList([nn.LayerNorm(d) for _ in range(layers)])
        self.attns = nn.ModuleList([RotarySelfAttention(d, heads) for _ in range(layers)])
        self.head = nn.Linear(d, vocab, bias=False)
        hd = d // heads
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd)))

    def forward(self, input_ids, position_ids):
        s = input_ids.size(1)
        x = self.embed(input_ids)
        f = position_ids.float()[:, :, None] * self.inv_freq[None, None, :]
        emb = torch.cat((f, f), dim=-1)
        causal = torch.triu(torch.full((s, s), float("-inf")), diagonal=1)
        for norm, attn in zip(self.norms, self.attns):
            x = x + attn(norm(x), emb.cos(), emb.sin(), causal)
        return self.head(x)


def token_and_mask_inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 100, (2, 10), generator=g, dtype=torch.long)
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 7:] = 0  # the second row is padded
    return ids, mask


def token_and_position_inputs():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 100, (2, 10), generator=g, dtype=torch.long)
    return ids, torch.arange(3, 13).view(1, -1)  # positions continuing a prefix of 3


def models():
    import torchvision
    tokens = {0: "batch", 1: "sequence"}
    return {
        "resnet18": (lambda: torchvision.models.resnet18(weights=None), [(1, 3, 224, 224)],
                     {"input_0": {0: "batch"}}),
        "transformer_encoder": (TransformerClassifier, [(2, 10, 64)],
                                {"input_0": {0: "batch", 1: "seq"}}),
        "lstm_bidirectional": (LstmTagger, [(7, 3, 16)], {"input_0": {0: "seq", 1: "batch"}}),
        "gru": (GruEncoder, [(2, 6, 12)], {"input_0": {0: "batch", 1: "seq"}}),
        "mlp_block": (MlpMixer, [(4, 32)], {"input_0": {0: "batch"}}),
        "gpt_causal_mask": (CausalLmWithMask, token_and_mask_inputs,
                            {"input_ids": tokens, "attention_mask": tokens, "logits": tokens},
                            ["input_ids", "attention_mask"], ["logits"]),
        "rotary_lm": (RotaryLm, token_and_position_inputs,
                      {"input_ids": tokens, "position_ids": {1: "sequence"}, "logits": tokens},
                      ["input_ids", "position_ids"], ["logits"]),
    }


def export(name, make, shapes, dynamic, root, input_names=None, output_names=None):
    """shapes: a list of input shapes (random normal inputs) or a function making the inputs."""
    folder = os.path.join(root, "pytorch-models", name)
    if os.path.exists(os.path.join(folder, "test_data_set_0", "output_0.pb")):
        return
    os.makedirs(os.path.join(folder, "test_data_set_0"), exist_ok=True)
    torch.manual_seed(0)
    model = make().eval()
    inputs = shapes() if callable(shapes) else tuple(torch.randn(*s) for s in shapes)
    with torch.no_grad():
        outputs = model(*inputs)
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    input_names = input_names or [f"input_{i}" for i in range(len(inputs))]
    output_names = output_names or [f"output_{i}" for i in range(len(outputs))]
    path = os.path.join(folder, "model.onnx")
    torch.onnx.export(model, inputs, path, input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic, opset_version=17)
    onnx.checker.check_model(onnx.load(path))
    for i, t in enumerate(inputs):
        write(os.path.join(folder, "test_data_set_0", f"input_{i}.pb"), t)
    for i, t in enumerate(outputs):
        write(os.path.join(folder, "test_data_set_0", f"output_{i}.pb"), t)
    print(f"exported {name}")


def write(path, tensor):
    array = tensor.detach().numpy()
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def main(root):
    for name, (make, shapes, dynamic, *names) in models().items():
        export(name, make, shapes, dynamic, root, *names)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/test-models")
