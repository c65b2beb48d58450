"""clean-fid's kernel_distance (cleanfid/fid.py) over subsets chosen by the Rust test
instead of numpy's generator: argv = a.f32 rows_a b.f32 rows_b dim subsets.i64 n m.
Prints the mean and the ddof-1 std over subsets (torchmetrics' KID output)."""
import sys

import numpy as np

a_path, rows_a, b_path, rows_b, dim = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
sub_path, num_subsets, m = sys.argv[6], int(sys.argv[7]), int(sys.argv[8])
feats1 = np.fromfile(a_path, dtype="<f4").reshape(rows_a, dim).astype(np.float64)
feats2 = np.fromfile(b_path, dtype="<f4").reshape(rows_b, dim).astype(np.float64)
subsets = np.fromfile(sub_path, dtype="<i8").reshape(num_subsets, 2, m)
n = dim
values = []
for k in range(num_subsets):
    x = feats1[subsets[k, 0]]
    y = feats2[subsets[k, 1]]
    a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
    b = (x @ y.T / n + 1) ** 3
    values.append(((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m)
values = np.array(values)
print(repr(float(values.mean())), repr(float(values.std(ddof=1))))
