"""The relevance rules of Chefer et al.'s exact LRP (ALGORITHMS.md 15.2, 15.3) as their reference applies them:
every module keeps its input X, detached, and its rule is the z-rule "Z = f(X), S = safe_divide(R, Z),
C = autograd.grad(Z, X, S), R_in = X * C", written here from the spec text (not from attnlens' C++), for the image
and the text cross-checks (chefer_lrp_vs_pytorch.py, chefer_lrp_text_vs_pytorch.py)."""
import torch
import torch.nn.functional as F


def safe_divide(a, b):
    den = b.clamp(min=1e-9) + b.clamp(max=1e-9)
    den = den + den.eq(0).type(den.type()) * 1e-9
    return a / den * b.ne(0).type(b.type())


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def z_rule(f, xs, r):
    """Z = f(*X), S = safe_divide(R, Z), R_i = X_i * dZ/dX_i^T S."""
    xs = [leaf(x) for x in xs]
    z = f(*xs)
    grads = torch.autograd.grad(z, xs, safe_divide(r, z.detach()))
    return [x.detach() * g for x, g in zip(xs, grads)]


def linear_rule(r, x, w):
    """Linear alpha 1 beta 0: the positive and negative parts share one denominator; no bias."""
    xp, xn = leaf(x.clamp(min=0)), leaf(x.clamp(max=0))
    z1, z2 = F.linear(xp, w.clamp(min=0)), F.linear(xn, w.clamp(max=0))
    s = safe_divide(r, (z1 + z2).detach())
    return xp.detach() * torch.autograd.grad(z1, xp, s)[0] + xn.detach() * torch.autograd.grad(z2, xn, s)[0]


def add_rule(r, x0, x1, rescale=True):
    a, b = z_rule(torch.add, [x0, x1], r)
    if not rescale:  # layers_lrp (negative control)
        return a, b
    sa, sb, total = a.sum(), b.sum(), r.sum()
    fa = safe_divide(sa.abs(), sa.abs() + sb.abs()) * total
    fb = safe_divide(sb.abs(), sa.abs() + sb.abs()) * total
    return a * safe_divide(fa, sa), b * safe_divide(fb, sb)


def clone_rule(rs, x):
    x = leaf(x)
    copies = [x * 1 for _ in rs]  # the copies, each a function of x
    grads = torch.autograd.grad(copies, x, [safe_divide(r, z.detach()) for r, z in zip(rs, copies)])[0]
    return x.detach() * grads


def einsum_rule(equation, r, a, b):
    return z_rule(lambda p, q: torch.einsum(equation, p, q), [a, b], r)


def conv_zb_rule(r, x, w, stride):
    """zB: bounds = the image's min and max; dZ/dX^T S through autograd of conv2d (the transposed convolution)."""
    lo, hi = x * 0 + x.min(), x * 0 + x.max()
    wp, wn = w.clamp(min=0), w.clamp(max=0)
    xs = [leaf(t) for t in (x, lo, hi)]
    za = F.conv2d(xs[0], w, stride=stride) - F.conv2d(xs[1], wp, stride=stride) - F.conv2d(xs[2], wn, stride=stride)
    s = r / (za.detach() + 1e-9)
    gx, gl, gh = torch.autograd.grad(za, xs, s)
    # The grads of the l and h terms carry the minus signs already.
    return x * gx + lo * gl + hi * gh
