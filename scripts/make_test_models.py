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


def models():
    import torchvision
    return {
        "resnet18": (lambda: torchvision.models.resnet18(weights=None), [(1, 3, 224, 224)],
                     {"input_0": {0: "batch"}}),
        "transformer_encoder": (TransformerClassifier, [(2, 10, 64)],
                                {"input_0": {0: "batch", 1: "seq"}}),
        "lstm_bidirectional": (LstmTagger, [(7, 3, 16)], {"input_0": {0: "seq", 1: "batch"}}),
        "gru": (GruEncoder, [(2, 6, 12)], {"input_0": {0: "batch", 1: "seq"}}),
        "mlp_block": (MlpMixer, [(4, 32)], {"input_0": {0: "batch"}}),
    }


def export(name, make, shapes, dynamic, root):
    folder = os.path.join(root, "pytorch-models", name)
    if os.path.exists(os.path.join(folder, "test_data_set_0", "output_0.pb")):
        return
    os.makedirs(os.path.join(folder, "test_data_set_0"), exist_ok=True)
    torch.manual_seed(0)
    model = make().eval()
    inputs = tuple(torch.randn(*s) for s in shapes)
    with torch.no_grad():
        outputs = model(*inputs)
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    input_names = [f"input_{i}" for i in range(len(inputs))]
    output_names = [f"output_{i}" for i in range(len(outputs))]
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
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(tensor.detach().numpy().astype(np.float32)).SerializeToString())


def main(root):
    for name, (make, shapes, dynamic) in models().items():
        export(name, make, shapes, dynamic, root)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/test-models")
