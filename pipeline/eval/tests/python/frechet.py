"""pytorch-fid's Fréchet distance (pytorch_fid/fid_score.py, calculate_frechet_distance),
on features written by the Rust test: argv = a.f32 rows_a b.f32 rows_b dim."""
import sys

import numpy as np
import scipy.linalg


def calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


a_path, rows_a, b_path, rows_b, dim = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
a = np.fromfile(a_path, dtype="<f4").reshape(rows_a, dim).astype(np.float64)
b = np.fromfile(b_path, dtype="<f4").reshape(rows_b, dim).astype(np.float64)
fid = calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
print(repr(float(fid)))
