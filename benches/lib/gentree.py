# Trees for benches/restore.sh, the same for a given seed on every run.
#   gentree.py system <dir> <seed> <files>   shaped like a system tree
#   gentree.py small <dir> <seed> <files>    small files, 250 a directory
#   gentree.py change <dir> <seed> <percent> rewrite that share of files
import os
import random
import sys
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


def small(root, r, files):
    """Files of 100-4000 bytes, 250 a directory."""
    os.makedirs(root)
    for i in range(files):
        d = os.path.join(root, "d%05d" % (i // 250))
        if i % 250 == 0:
            os.mkdir(d)
        with open(os.path.join(d, "f%03d" % (i % 250)), "wb") as f:
            f.write(r.randbytes(r.randint(100, 4000)))


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


what, root, seed, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
{"system": system, "small": small, "change": change}[what](root, random.Random(seed), n)
