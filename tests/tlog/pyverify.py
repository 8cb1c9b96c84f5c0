#!/usr/bin/env python3
"""pyverify.py - a second, independent verifier of a tallyd results log.

Standard library only, written apart from libtally (lib/tlog.c) so that a
mistake in one is caught by the other: RFC 6962 / RFC 9162 Merkle trees,
C2SP tlog-tiles, signed notes, tlog-proof, and Ed25519 verification written
from RFC 8032 section 5.1.7 (pure Python, slow, fine for checkpoints).

    pyverify.py selftest
    pyverify.py log DIR --key VKEY [--from CHECKPOINT]... [--contest C]
    pyverify.py receipt FILE --key VKEY
    pyverify.py leaderboard FILE --at N --log DIR --key VKEY

What it checks of a log: the checkpoint's signature and origin; every entry
tile (each entry canonical JSON, its version its index + 1, its
leaderboard_sha256 64 hex digits; entries of the older form, without one,
only before the first that has one); the leaderboard-sha256 line of older
checkpoints well formed; the root over all entries against the checkpoint;
every hash tile; every older checkpoint a prefix of the log.  Each contest
of a tallyd has its own log: its origin is tallyd/<contest>/<hash>, and
either no entry names a contest (the first contest's) or every one names
that one; --contest C checks the log is C's.  It does not
replay the entries (that needs libtally's seat engine: tallyctl verify does
it).  `leaderboard` checks the log so, then that FILE's SHA-256 is the one
the entry of version N carries: the bytes tallyd says it served.
Exit 0 when everything holds, 1 otherwise (each failure printed).
"""

import base64
import hashlib
import json
import os
import sys

# ---- Ed25519 verification, RFC 8032 section 5.1 ----

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    # Extended coordinates (X, Y, Z, T), RFC 8032 5.1.4.
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, pt):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        s >>= 1
    return q


def _equal(a, b):
    x1, y1, z1, _ = a
    x2, y2, z2, _ = b
    return (x1 * z2 - x2 * z1) % P == 0 and (y1 * z2 - y2 * z1) % P == 0


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _decode_point(b):
    if len(b) != 32:
        return None
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


_GY = 4 * pow(5, P - 2, P) % P
G = (_recover_x(_GY, 0), _GY, 1, _recover_x(_GY, 0) * _GY % P)


def ed25519_verify(pub, msg, sig):
    """RFC 8032 5.1.7 (cofactorless: [S]B = R + [k]A)."""
    if len(pub) != 32 or len(sig) != 64:
        return False
    a = _decode_point(pub)
    r = _decode_point(sig[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(sig[:32] + pub + msg).digest(),
                       "little") % L
    return _equal(_mul(s, G), _add(r, _mul(k, a)))


# ---- RFC 6962 Merkle tree ----

def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):
    """Root of a list of leaf hashes (RFC 6962 2.1), iteratively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    # Fold the perfect subtrees from the right, as the recursion does.
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1])
               for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def subtree_levels(leaves):
    """levels[k][i]: the hash of the complete subtree i at height k."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([node_hash(prev[i], prev[i + 1])
                       for i in range(0, len(prev) - 1, 2)])
    return levels


def inclusion_verify(index, size, leaf, proof, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_verify(size1, size2, proof, root1, root2):
    """RFC 9162 2.1.4.2."""
    if size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


# ---- C2SP tlog-tiles ----

def tile_path(level, n, width):
    groups = []
    while True:
        groups.append(n % 1000)
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    elems = ["x%03d" % g for g in groups[:-1]] + ["%03d" % groups[-1]]
    p = "tile/%s/%s" % ("entries" if level < 0 else str(level),
                        "/".join(elems))
    if width < 256:
        p += ".p/%d" % width
    return p


def tile_width(size, level, n):
    count = size >> (8 * max(level, 0))
    full = count // 256
    if n < full:
        return 256
    if n == full:
        return count % 256
    return 0


# ---- signed notes ----

def parse_vkey(text):
    text = text.strip()
    parts = text.split("+", 2)
    if len(parts) != 3 or not parts[0] or len(parts[1]) != 8:
        raise ValueError("a key is name+keyid+base64")
    name, idhex, b64 = parts
    if any(c <= " " or c > "~" for c in name):
        raise ValueError("bad key name")
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError("not an Ed25519 key")
    kid = hashlib.sha256(name.encode() + b"\n\x01" + raw[1:]).digest()[:4]
    if kid.hex() != idhex:
        raise ValueError("key id does not match")
    return name, kid, raw[1:]


def strict_b64(s):
    raw = base64.b64decode(s, validate=True)
    if base64.b64encode(raw).decode() != s:
        raise ValueError("not canonical base64")
    return raw


def open_note(note, key):
    """The signed text of a note verified by key, or raise ValueError."""
    name, kid, pub = key
    split = note.rfind(b"\n\n")
    if split < 0:
        raise ValueError("no blank line")
    text, sigs = note[:split + 1], note[split + 2:]
    try:
        t = text.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("text is not UTF-8")
    if any((ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
           for c in t):
        raise ValueError("control character in text")
    if not sigs or not sigs.endswith(b"\n"):
        raise ValueError("no signatures")
    good = 0
    lines = sigs[:-1].split(b"\n")
    if len(lines) > 100:
        raise ValueError("too many signatures")
    for line in lines:
        if not line.startswith("\u2014 ".encode()):
            raise ValueError("bad signature line")
        rest = line[4:]
        sp = rest.find(b" ")
        if sp <= 0 or b"+" in rest[:sp]:
            raise ValueError("bad signature name")
        sname, sig = rest[:sp], strict_b64(rest[sp + 1:].decode("ascii"))
        if len(sig) < 5:
            raise ValueError("short signature")
        if sname == name.encode() and sig[:4] == kid:
            if len(sig) != 68 or not ed25519_verify(pub, text, sig[4:]):
                raise ValueError("signature of %s does not verify" % name)
            good += 1
    if good == 0:
        raise ValueError("no signature by the key")
    return text


def parse_checkpoint(text, key):
    lines = text.decode().split("\n")
    if len(lines) < 4:
        raise ValueError("short checkpoint")
    origin, size, root = lines[0], lines[1], lines[2]
    if origin != key[0]:
        raise ValueError("origin is not the key's name")
    if not size.isdigit() or (size.startswith("0") and size != "0"):
        raise ValueError("bad size")
    r = strict_b64(root)
    if len(r) != 32:
        raise ValueError("bad root")
    # Extension lines; tallyd's one is the leaderboard's SHA-256 at this
    # size (checked by a replay, which is tallyctl's: here only its form).
    lbs = [x for x in lines[3:-1] if x.startswith("leaderboard-sha256 ")]
    if lines[-1] != "" or len(lbs) > 1 or any(
            len(x) != 19 + 64 or any(c not in "0123456789abcdef"
                                     for c in x[19:]) for x in lbs):
        raise ValueError("bad leaderboard-sha256 line")
    return int(size), r


# ---- canonical entries (jansson's JSON_COMPACT|SORT_KEYS|ENSURE_ASCII) ----

def _jstr(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t"}[ch])
        elif o < 0x20:
            out.append("\\u%04X" % o)
        elif o < 0x80:
            out.append(ch)
        elif o < 0x10000:
            out.append("\\u%04X" % o)
        else:
            o -= 0x10000
            out.append("\\u%04X\\u%04X" % (0xD800 | o >> 10,
                                           0xDC00 | (o & 0x3FF)))
    out.append('"')
    return "".join(out)


def canonical(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _jstr(v)
    if isinstance(v, list):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(_jstr(k) + ":" + canonical(v[k])
                              for k in sorted(v)) + "}"
    raise ValueError("a float in an entry")


def _no_dups(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key %s" % k)
        d[k] = v
    return d


def check_entry(raw, index):
    obj = json.loads(raw.decode("ascii"), object_pairs_hook=_no_dups)
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    if canonical(obj).encode() != raw:
        raise ValueError("not canonical")
    if obj.get("version") != index + 1 or isinstance(obj.get("version"),
                                                      bool):
        raise ValueError("version %r at index %d" % (obj.get("version"),
                                                      index))
    # Entries of the older form carry no leaderboard hash (verify_log
    # accepts them only before the first that does).
    lb = obj.get("leaderboard_sha256", "0" * 64)
    if not isinstance(lb, str) or len(lb) != 64 or \
            any(c not in "0123456789abcdef" for c in lb):
        raise ValueError("bad leaderboard_sha256")
    if not isinstance(obj.get("results"), list) or \
            not isinstance(obj.get("received_at"), str):
        raise ValueError("no results or received_at")
    return obj


# ---- the log ----

class Failures:
    def __init__(self):
        self.n = 0

    def __call__(self, msg):
        self.n += 1
        if self.n <= 20:
            print("pyverify: FAIL: " + msg, file=sys.stderr)


def read(d, rel):
    with open(os.path.join(d, rel), "rb") as f:
        return f.read()


def read_tile(d, level, n, w):
    """(path read, bytes, cut): cut when a full tile stands in for the
    partial one (a mirror that grew since)."""
    p = tile_path(level, n, w)
    try:
        return p, read(d, p), False
    except OSError:
        if w == 256:
            raise
        p = tile_path(level, n, 256)
        return p, read(d, p), True


def verify_log(d, key, froms, entries=None, contest=None):
    """0 when the log holds; entries (a list) gets every entry's object."""
    fail = Failures()
    seen_hash = False
    n_old = 0
    named = []      # the contest the first entry names ("" for none)
    try:
        size, root = parse_checkpoint(open_note(read(d, "checkpoint"), key),
                                      key)
    except (OSError, ValueError) as e:
        fail("checkpoint: %s" % e)
        return 1
    parts = key[0].split("/")
    origin_contest = parts[1] if len(parts) >= 3 and parts[0] == "tallyd" \
        else None
    if contest is not None and origin_contest not in (None, contest):
        fail("checkpoint: the log of contest %s, not %s" % (origin_contest,
                                                          contest))
    leaves = []
    n = 0
    while tile_width(size, -1, n):
        w = tile_width(size, -1, n)
        try:
            p, b, cut = read_tile(d, -1, n, w)
        except OSError as e:
            fail("%s: %s" % (tile_path(-1, n, w), e))
            break
        off = 0
        got = 0
        while got < w and off + 2 <= len(b):
            ln = b[off] << 8 | b[off + 1]
            if off + 2 + ln > len(b):
                break
            e = b[off + 2:off + 2 + ln]
            off += 2 + ln
            idx = len(leaves)
            leaves.append(leaf_hash(e))
            got += 1
            try:
                obj = check_entry(e, idx)
                c = obj.get("contest", "")
                if not named:
                    named.append(c)
                    if c and c != (origin_contest or c):
                        fail("%s: entry %d: of contest %s in the log of %s"
                             % (p, idx, c, origin_contest))
                elif c != named[0]:
                    fail("%s: entry %d: of contest %r after entries of %r"
                         % (p, idx, c, named[0]))
                if "leaderboard_sha256" in obj:
                    seen_hash = True
                elif seen_hash:
                    fail("%s: entry %d: no leaderboard_sha256 after "
                         "entries that carry one" % (p, idx))
                else:
                    n_old += 1
                if entries is not None:
                    entries.append(obj)
            except (ValueError, UnicodeDecodeError) as ex:
                fail("%s: entry %d: %s" % (p, idx, ex))
                if entries is not None:
                    entries.append(None)
        if got < w:
            fail("%s: %d entries where %d were due" % (p, got, w))
            break
        if off != len(b) and not cut:
            fail("%s: %d bytes after its %d entries" % (p, len(b) - off, w))
        n += 1
    if len(leaves) != size:
        fail("the entry tiles hold %d entries, the checkpoint says %d"
             % (len(leaves), size))
        return 1
    levels = subtree_levels(leaves)
    if mth(leaves) != root:
        fail("checkpoint: root differs from the entries'")
    for level in range(8):
        n = 0
        while tile_width(size, level, n):
            w = tile_width(size, level, n)
            try:
                p, b, cut = read_tile(d, level, n, w)
            except OSError as e:
                fail("%s: %s" % (tile_path(level, n, w), e))
                n += 1
                continue
            want = b"".join(levels[8 * level][n * 256:n * 256 + w])
            if len(b) != (256 if cut else w) * 32 or b[:w * 32] != want:
                fail("%s: not the tree's hashes" % p)
            n += 1
    for f in froms:
        try:
            with open(f, "rb") as fh:
                osize, oroot = parse_checkpoint(open_note(fh.read(), key),
                                                key)
        except (OSError, ValueError) as e:
            fail("%s: %s" % (f, e))
            continue
        if osize > size:
            fail("%s: larger than the log" % f)
        elif mth(leaves[:osize]) != oroot:
            fail("%s: the log's prefix has another root" % f)
    if fail.n:
        print("FAILED: %d problems" % fail.n)
        return 1
    if n_old:
        print("note: %d entries of the older form (no leaderboard_sha256)"
              % n_old)
    print("ok: %s, %d entries" % (key[0], size))
    return 0


def verify_leaderboard(path, at, d, key):
    """FILE is the leaderboard the entry of version `at` hashed."""
    entries = []
    if verify_log(d, key, [], entries) != 0:
        return 1
    try:
        with open(path, "rb") as f:
            h = hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        print("pyverify: FAIL: %s: %s" % (path, e), file=sys.stderr)
        return 1
    if not 1 <= at <= len(entries) or entries[at - 1] is None or \
            "leaderboard_sha256" not in entries[at - 1]:
        print("pyverify: FAIL: no entry of version %d with a leaderboard "
              "hash" % at, file=sys.stderr)
        return 1
    if entries[at - 1]["leaderboard_sha256"] != h:
        print("pyverify: FAIL: %s is not the leaderboard of version %d"
              % (path, at), file=sys.stderr)
        return 1
    print("ok: %s is the leaderboard entry %d hashed" % (path, at - 1))
    return 0


def verify_receipt(path, key):
    try:
        with open(path, "rb") as f:
            data = f.read()
        head = b"c2sp.org/tlog-proof@v1\n"
        if not data.startswith(head):
            raise ValueError("not a tlog-proof")
        blank = data.index(b"\n\n", len(head))
        lines = data[len(head):blank].decode("ascii").split("\n")
        note = data[blank + 2:]
        extra = None
        if lines and lines[0].startswith("extra "):
            extra = strict_b64(lines.pop(0)[6:])
        if not lines or not lines[0].startswith("index "):
            raise ValueError("no index")
        idx = lines.pop(0)[6:]
        if not idx.isdigit() or (idx.startswith("0") and idx != "0"):
            raise ValueError("bad index")
        proof = [strict_b64(h) for h in lines]
        if any(len(h) != 32 for h in proof) or extra is None:
            raise ValueError("bad proof hashes or no entry")
        size, root = parse_checkpoint(open_note(note, key), key)
        if not inclusion_verify(int(idx), size, leaf_hash(extra), proof,
                                root):
            raise ValueError("inclusion proof does not verify")
        check_entry(extra, int(idx))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        print("pyverify: FAIL: %s: %s" % (path, e), file=sys.stderr)
        return 1
    print("ok: entry %s at size %d" % (idx, size))
    return 0


# ---- self test: the CT vectors and RFC 8032 ----

CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (index, size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CT_CONSISTENCY = [  # (size1, size2, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


def selftest():
    bad = 0
    leaves = [leaf_hash(bytes.fromhex(x)) for x in CT_LEAVES]
    roots = [bytes.fromhex(r) for r in CT_ROOTS]
    for n in range(9):
        if mth(leaves[:n]) != roots[n]:
            print("root %d differs" % n)
            bad += 1
    for idx, size, proof in CT_INCLUSION:
        pr = [bytes.fromhex(h) for h in proof]
        if not inclusion_verify(idx, size, leaves[idx], pr, roots[size]):
            print("inclusion %d/%d refused" % (idx, size))
            bad += 1
        for i in range(len(pr)):
            b = list(pr)
            b[i] = bytes([b[i][0] ^ 8]) + b[i][1:]
            if inclusion_verify(idx, size, leaves[idx], b, roots[size]):
                print("corrupt inclusion %d/%d accepted" % (idx, size))
                bad += 1
    for s1, s2, proof in CT_CONSISTENCY:
        pr = [bytes.fromhex(h) for h in proof]
        if not consistency_verify(s1, s2, pr, roots[s1], roots[s2]):
            print("consistency %d/%d refused" % (s1, s2))
            bad += 1
        if consistency_verify(s1, s2, pr, roots[s2], roots[s1]):
            print("swapped roots %d/%d accepted" % (s1, s2))
            bad += 1
    # RFC 8032 7.1 test 1 (the empty message).
    pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a"
                        "0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e0"
                        "65224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595b"
                        "be24655141438e7a100b")
    if not ed25519_verify(pub, b"", sig):
        print("RFC 8032 test 1 refused")
        bad += 1
    if ed25519_verify(pub, b"x", sig) or \
            ed25519_verify(pub, b"", sig[:63] + bytes([sig[63] ^ 1])):
        print("RFC 8032 test 1 altered accepted")
        bad += 1
    if tile_path(0, 1234067, 256) != "tile/0/x001/x234/067" or \
            tile_path(-1, 5, 17) != "tile/entries/005.p/17":
        print("tile paths differ")
        bad += 1
    print("selftest: %s" % ("ok" if bad == 0 else "%d failures" % bad))
    return 1 if bad else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "selftest":
        return selftest()
    if len(argv) < 3 or argv[1] not in ("log", "receipt", "leaderboard"):
        print(__doc__, file=sys.stderr)
        return 2
    key = froms = at = logdir = contest = None
    froms = []
    i = 3
    while i < len(argv):
        if argv[i] == "--key" and i + 1 < len(argv):
            key = argv[i + 1]
        elif argv[i] == "--from" and i + 1 < len(argv):
            froms.append(argv[i + 1])
        elif argv[i] == "--at" and i + 1 < len(argv) and \
                argv[i + 1].isdigit():
            at = int(argv[i + 1])
        elif argv[i] == "--log" and i + 1 < len(argv):
            logdir = argv[i + 1]
        elif argv[i] == "--contest" and i + 1 < len(argv):
            contest = argv[i + 1]
        else:
            print("pyverify: unknown argument %s" % argv[i], file=sys.stderr)
            return 2
        i += 2
    if key is None:
        return 2
    if "+" not in key:
        with open(key) as f:
            key = f.read()
    try:
        k = parse_vkey(key)
    except ValueError as e:
        print("pyverify: key: %s" % e, file=sys.stderr)
        return 2
    if argv[1] == "log":
        return verify_log(argv[2], k, froms, contest=contest)
    if argv[1] == "leaderboard":
        if at is None or logdir is None:
            return 2
        return verify_leaderboard(argv[2], at, logdir, k)
    return verify_receipt(argv[2], k)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
