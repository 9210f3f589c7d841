# Trees for the benches (restore.sh, mirror_verify.sh, mount.sh), the same
# for a given seed on every run.
#   gentree.py system <dir> <seed> <files>   shaped like a system tree
#   gentree.py small <dir> <seed> <files> [--per-dir N] [--size MIN-MAX]
#                                            small files, 250 a directory,
#                                            100-4000 bytes unless told
#   gentree.py mixed <dir> <seed> <files>    files of a home or web tree:
#                                            a few KiB on average (most
#                                            under 8 KiB, 1% up to 256 KiB),
#                                            100 a directory, 20 top ones
#   gentree.py change <dir> <seed> <percent> rewrite that share of files
import argparse
import os
import random
import time


def system(root, r, files):
    """Mostly small files, a few large ones (2-8 MiB), directories of
    every depth (one chain 16 deep), symlinks (short and long targets,
    some dangling), hard links, mixed modes and old mtimes."""
    os.makedirs(root)
    dirs = [root]
    d = root
    for i in range(16):
        d = os.path.join(d, "deep%02d" % i)
        os.mkdir(d)
        dirs.append(d)
    regular = []
    now = int(time.time())
    made = 0
    while made < files:
        if r.random() < 0.08:
            d = os.path.join(r.choice(dirs), "d%d" % len(dirs))
            os.mkdir(d)
            dirs.append(d)
            continue
        # Files cluster in recent directories, as packages install them.
        parent = r.choice(dirs[-40:]) if r.random() < 0.7 else r.choice(dirs)
        kind = r.random()
        p = os.path.join(parent, "f%d.%s" % (made, r.choice(["txt", "gz", "png", "so", "html", "py"])))
        if kind < 0.03:
            if regular and r.random() < 0.7:
                target = os.path.relpath(r.choice(regular), parent)
            else:
                target = "../missing/%x" % r.getrandbits(64)
            os.symlink(target, p)
        elif kind < 0.04 and regular:
            os.link(r.choice(regular), p)
        else:
            x = r.random()
            if x < 0.70:
                size = r.randrange(0, 4096)
            elif x < 0.97:
                size = r.randrange(4096, 32768)
            elif x < 0.999:
                size = r.randrange(65536, 262144)
            else:
                size = r.randrange(2 << 20, 8 << 20)
            with open(p, "wb") as f:
                f.write(r.randbytes(size))
            os.chmod(p, r.choice([0o644] * 6 + [0o755, 0o600, 0o444]))
            t = now - r.randrange(86400 * 365 * 3)
            os.utime(p, (t, t))
            regular.append(p)
        made += 1


def small(root, r, files, per_dir, size):
    """Files of `size` (min, max) bytes, `per_dir` a directory."""
    os.makedirs(root)
    width = max(3, len(str(per_dir - 1)))
    for i in range(files):
        d = os.path.join(root, "d%05d" % (i // per_dir))
        if i % per_dir == 0:
            os.mkdir(d)
        with open(os.path.join(d, "f%0*d" % (width, i % per_dir)), "wb") as f:
            f.write(r.randbytes(r.randint(*size)))


def mixed(root, r, files):
    """Sizes as a home or web tree has them: 60% under 2 KiB, 30% 2-8
    KiB, 9% 8-32 KiB, 1% 32-256 KiB (5.3 KiB on average); 100 files a
    directory, the directories spread over 20 top ones."""
    os.makedirs(root)
    for i in range(files):
        d = os.path.join(root, "t%02d" % (i // 100 % 20), "d%04d" % (i // 100))
        if i % 100 == 0:
            os.makedirs(d)
        x = r.random()
        if x < 0.60:
            size = r.randrange(0, 2048)
        elif x < 0.90:
            size = r.randrange(2048, 8192)
        elif x < 0.99:
            size = r.randrange(8192, 32768)
        else:
            size = r.randrange(32768, 262144)
        with open(os.path.join(d, "f%02d" % (i % 100)), "wb") as f:
            f.write(r.randbytes(size))


def change(root, r, percent):
    """Rewrites `percent` of the regular files with new bytes of about
    the same size, as an update would."""
    regular = []
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for n in sorted(fns):
            p = os.path.join(dp, n)
            if os.path.isfile(p) and not os.path.islink(p):
                regular.append(p)
    for p in r.sample(regular, max(1, len(regular) * percent // 100)):
        size = os.path.getsize(p)
        os.chmod(p, 0o644)
        with open(p, "wb") as f:
            f.write(r.randbytes(size + r.randrange(64)))


def size_range(arg):
    lo, _, hi = arg.partition("-")
    return int(lo), int(hi)


args = argparse.ArgumentParser()
shapes = args.add_subparsers(dest="shape", required=True)
for name in ("system", "small", "mixed", "change"):
    shape = shapes.add_parser(name)
    shape.add_argument("root")
    shape.add_argument("seed", type=int)
    shape.add_argument("n", type=int)
shapes.choices["small"].add_argument("--per-dir", type=int, default=250)
shapes.choices["small"].add_argument("--size", type=size_range, default=(100, 4000))
a = args.parse_args()
r = random.Random(a.seed)
if a.shape == "small":
    small(a.root, r, a.n, a.per_dir, a.size)
else:
    {"system": system, "mixed": mixed, "change": change}[a.shape](a.root, r, a.n)
