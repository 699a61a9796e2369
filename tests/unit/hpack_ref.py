#!/usr/bin/env python3
"""unit.hpack_ref: our HPACK codec against python3-hpack, an independent one.

1. python3-hpack's Encoder (dynamic table, Huffman, now and then a table
   size change) encodes a few hundred random header lists in sequence, as on
   one connection; our decoder (hpack_ref_driver decode) must give back every
   list exactly.
2. Our encoder (hpack_ref_driver encode) encodes the same lists; python3-hpack's
   Decoder, one instance for all of them, must decode each exactly.

Usage: hpack_ref.py DRIVER. Exits 77 when python3-hpack is missing, unless
MIRRORD_TRACE_MUST_WORK=1 (then 1).
"""
import os
import random
import subprocess
import sys

try:
    import hpack
except ImportError:
    msg = "python3-hpack is not installed (scripts/deps installs it)"
    if os.environ.get("MIRRORD_TRACE_MUST_WORK") == "1":
        print("FAIL: " + msg)
        sys.exit(1)
    print("SKIP: " + msg)
    sys.exit(77)

LISTS = 400
# Fixed seed: a failure reproduces; the seed is printed anyway.
SEED = int(os.environ.get("HPACK_REF_SEED", "7541"))
rng = random.Random(SEED)

STATIC_NAMES = [b":authority", b":method", b":path", b":scheme", b":status",
                b"accept", b"accept-encoding", b"authorization", b"content-length",
                b"content-type", b"cookie", b"set-cookie", b"user-agent", b"www-authenticate"]
# Repeated names and values, so the peer's encoder indexes and reuses them.
POOL_NAMES = [b"x-request-id", b"grpc-timeout", b"te", b"x-b3-traceid", b"x-tenant"]
POOL_VALUES = [b"", b"trailers", b"application/grpc", b"GET", b"/svc.Echo/Say", b"gzip"]


# Byte maps for rand_bytes: binary values get 0x00 and 0xff a quarter of
# the time each; text values are printable ASCII.
BINARY = bytes(0 if b < 64 else 0xff if b < 128 else b for b in range(256))
TEXT = bytes(0x20 + b % 95 for b in range(256))


def rand_bytes(n, binary):
    return rng.randbytes(n).translate(BINARY if binary else TEXT)


def rand_name():
    k = rng.randrange(10)
    if k < 4:
        return rng.choice(STATIC_NAMES)
    if k < 7:
        return rng.choice(POOL_NAMES)
    if k < 8:
        return b""
    return bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz-") for _ in range(rng.randrange(1, 30)))


def rand_value():
    k = rng.randrange(100)
    if k < 2:
        # Larger than the whole table: it empties the peer's table.
        return rand_bytes(16384 + rng.randrange(4096), rng.random() < 0.5)
    if k < 42:
        return rng.choice(POOL_VALUES)
    if k < 50:
        return b""
    return rand_bytes(rng.randrange(1, 200), rng.random() < 0.3)


def rand_list():
    return [(rand_name(), rand_value()) for _ in range(rng.randrange(0, 16))]


def fmt_list(lst):
    return " ".join(n.hex() + "=" + v.hex() for n, v in lst)


def run(driver, mode, lines):
    p = subprocess.run([driver, mode], input="".join(x + "\n" for x in lines),
                       capture_output=True, text=True, check=False)
    if p.returncode != 0:
        print("FAIL: driver %s exited %d: %s" % (mode, p.returncode, p.stderr.strip()))
        sys.exit(1)
    return p.stdout.splitlines()


def main():
    driver = sys.argv[1]
    lists = [rand_list() for _ in range(LISTS)]
    print("python3-hpack %s, %d lists, seed %d" % (hpack.__version__, LISTS, SEED))

    # 1. Theirs encodes, ours decodes.
    enc = hpack.Encoder()
    blocks = []
    sizes_changed = 0
    most_entries = 0
    for i, lst in enumerate(lists):
        if i % 50 == 49:
            # Emitted as a size update at the start of the next block.
            enc.header_table_size = rng.choice((0, 100, 256, 1024, 4096))
            sizes_changed += 1
        # python3-hpack's Huffman coder takes seconds on a 16 KiB value
        # (it shifts one big integer), so a list with one goes raw.
        huff = all(len(v) < 4096 for _, v in lst)
        blocks.append(enc.encode(lst, huffman=huff))
        most_entries = max(most_entries, len(enc.header_table.dynamic_entries))
    got = run(driver, "decode", [b.hex() for b in blocks])
    if len(got) != len(lists):
        print("FAIL: our decoder answered %d of %d blocks (last: %r)"
              % (len(got), len(lists), got[-1:]))
        return 1
    for i, (lst, line) in enumerate(zip(lists, got)):
        if line != fmt_list(lst):
            print("FAIL: block %d (%s) decoded as %r, want %r"
                  % (i, blocks[i].hex()[:200], line[:200], fmt_list(lst)[:200]))
            return 1
    # Not a test of a stateless peer: its table really filled.
    if most_entries < 10:
        print("FAIL: python3-hpack's table never held 10 entries (%d)" % most_entries)
        return 1
    print("ours decoded %d blocks from python3-hpack (%d bytes, %d table size changes,"
          " up to %d table entries)"
          % (len(blocks), sum(map(len, blocks)), sizes_changed, most_entries))

    # 2. Ours encodes, theirs decodes.
    got = run(driver, "encode", [fmt_list(lst) for lst in lists])
    if len(got) != len(lists):
        print("FAIL: our encoder answered %d of %d lists" % (len(got), len(lists)))
        return 1
    dec = hpack.Decoder(max_header_list_size=1 << 30)
    for i, (lst, line) in enumerate(zip(lists, got)):
        try:
            out = dec.decode(bytes.fromhex(line), raw=True)
        except hpack.HPACKError as e:
            print("FAIL: python3-hpack rejected our block %d: %s" % (i, e))
            return 1
        if [(bytes(n), bytes(v)) for n, v in out] != lst:
            print("FAIL: python3-hpack decoded our block %d differently" % i)
            return 1
    print("python3-hpack decoded %d blocks from ours (%d bytes)"
          % (len(got), sum(len(x) // 2 for x in got)))
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
