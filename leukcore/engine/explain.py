"""Explanations of a trained model's predictions: Grad-CAM maps over its last convolution.

Used by the book's figures (panels for a paper page) and by the GPU lease (panels made where
the weights are); kept here, beside the model, so neither reaches into the other.
"""
from __future__ import annotations

import numpy as np


def grad_cam(model, x_uint8: np.ndarray, target_layer=None, class_idx=None) -> np.ndarray:
    """Grad-CAM maps (Selvaraju et al. 2017) for a batch of uint8 NHWC images, each in [0, 1].

    ``target_layer`` defaults to the model's last ``nn.Conv2d``.  The map is
    ``ReLU(sum_k w_k A_k)`` with ``w_k`` the spatial mean of d(score)/dA_k, upsampled bilinearly.
    """
    import torch
    import torch.nn.functional as F

    from .setup import model_norm_stats

    if target_layer is None:
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        target_layer = convs[-1]
    acts, grads = {}, {}
    h1 = target_layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    h2 = target_layer.register_full_backward_hook(lambda m, gi, go: grads.__setitem__("g", go[0]))
    try:
        model.eval()
        mean, std = model_norm_stats(model)
        x = torch.as_tensor(x_uint8).permute(0, 3, 1, 2).float() / 255.0
        x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
        x.requires_grad_(True)
        out = model(x)
        idx = out.argmax(1) if class_idx is None else torch.as_tensor(class_idx).expand(out.shape[0])
        model.zero_grad()
        out.gather(1, idx.view(-1, 1)).sum().backward()
        w = grads["g"].mean(dim=(2, 3), keepdim=True)
        cam = F.relu((w * acts["a"]).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        cam = cam - cam.amin(dim=(1, 2), keepdim=True)
        cam = cam / cam.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        return cam.detach().numpy()
    finally:
        h1.remove()
        h2.remove()
