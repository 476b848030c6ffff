"""Dense bf16 tensor-core peaks of the GPUs the targets name, from the device name.

Figures are NVIDIA's datasheet numbers *without* structured sparsity (the datasheets print the 2:4-sparse figure,
twice these): H100 SXM5 and H200 SXM 989.4 TFLOP/s, H100 NVL and H200 NVL 835, H100 PCIe 756, A100 (SXM4 and PCIe)
312. Anything else is reported as unknown (pass ``--peak-tflops`` to supply one).
"""

from __future__ import annotations

PEAKS = [  # (substrings that must all appear in the upper-cased device name, TFLOP/s, label)
    (("GH200",), 989.4, "GH200"),
    (("H200", "NVL"), 835.0, "H200 NVL"),
    (("H200",), 989.4, "H200 SXM"),
    (("H100", "NVL"), 835.0, "H100 NVL"),
    (("H100", "PCIE"), 756.0, "H100 PCIe"),
    (("H100",), 989.4, "H100 SXM5"),
    (("A100",), 312.0, "A100"),
]
SOURCE = ("NVIDIA datasheets (H100, H200, A100), dense BF16 tensor-core figure = half the printed "
          "'with sparsity' figure")


def bf16_peak_tflops(device_name: str | None) -> tuple[float | None, str]:
    """(dense bf16 peak in TFLOP/s or None, what was matched)."""
    if not device_name:
        return None, "unknown (no device)"
    name = device_name.upper()
    for keys, tflops, label in PEAKS:
        if all(k in name for k in keys):
            return tflops, label
    return None, f"unknown ({device_name})"
