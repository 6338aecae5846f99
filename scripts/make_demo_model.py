"""Exports the demo model: a small CNN classifier (conv, batch norm, ReLU, pooling, linear)
with a dynamic batch axis, using Debian's PyTorch."""
import sys

import torch
import torch.nn as nn


class TinyConvNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(32, classes)

    def forward(self, image):
        x = self.features(image).flatten(1)
        return torch.softmax(self.head(x), dim=-1)


def main(path: str) -> None:
    torch.manual_seed(0)
    model = TinyConvNet().eval()
    example = torch.randn(1, 3, 32, 32)
    torch.onnx.export(model, (example,), path, input_names=["image"], output_names=["probs"],
                      dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}}, opset_version=17)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1])
