"""The pure-NumPy im2col/col2im: the path minidl runs when its compiled kernels are absent.

As Chainer does on the CPU, it loops only over the KH*KW kernel positions and copies one
strided slice of the padded input for each, so its cost is KH*KW vectorised copies.
Same layout as the compiled kernels: cols has shape (N, C*KH*KW, HO*WO).
"""
import numpy as np


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """x (N, C, H, W) -> cols (N, C*KH*KW, HO*WO)."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if (ph or pw) else x
    cols = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):
        y0 = i * dh
        for j in range(kw):
            x0 = j * dw
            cols[:, :, i, j] = xp[:, :, y0:y0 + sh * (ho - 1) + 1:sh, x0:x0 + sw * (wo - 1) + 1:sw]
    return cols.reshape(n, c * kh * kw, ho * wo)


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """cols (N, C*KH*KW, HO*WO) -> dx (N, C, H, W), summing overlapping windows."""
    n, c, h, w = x_shape
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        y0 = i * dh
        for j in range(kw):
            x0 = j * dw
            dxp[:, :, y0:y0 + sh * (ho - 1) + 1:sh, x0:x0 + sw * (wo - 1) + 1:sw] += cols[:, :, i, j]
    return dxp[:, :, ph:ph + h, pw:pw + w] if (ph or pw) else dxp
