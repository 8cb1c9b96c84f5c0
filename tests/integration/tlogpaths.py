"""The paths and bundles of a C2SP tlog-tiles log (docs/VERIFY.md), for the
tests that read a log tile by tile."""


def tile_n(n):
    s = "%03d" % (n % 1000)
    n //= 1000
    while n > 0:
        s = "x%03d/%s" % (n % 1000, s)
        n //= 1000
    return s


def tile_paths(size):
    """Every tile path (relative to /log/) a tree of `size` publishes."""
    out = []
    level, width = 0, size
    while width > 0:
        for n in range((width + 255) // 256):
            w = min(256, width - 256 * n)
            p = "tile/%d/%s" % (level, tile_n(n))
            out.append(p if w == 256 else p + ".p/%d" % w)
        level += 1
        width //= 256
    for n in range((size + 255) // 256):
        w = min(256, size - 256 * n)
        p = "tile/entries/%s" % tile_n(n)
        out.append(p if w == 256 else p + ".p/%d" % w)
    return out


def bundle_entries(b):
    out, off = [], 0
    while off < len(b):
        ln = b[off] << 8 | b[off + 1]
        out.append(b[off + 2:off + 2 + ln])
        off += 2 + ln
    return out
