"""Summarises the logs of parity/seeds.sh: usage: seeds_summary.py DIR (default target/seeds)."""
import glob
import os
import re
import sys


def accs(path):
    """Validation accuracy per epoch from a scratchnet or train_torch.py log."""
    out = []
    with open(path) as f:
        for line in f:
            m = re.match(r"(?i)epoch \d+/\d+ .*val_acc:? ([0-9.]+)", line)
            if m:
                out.append(float(m.group(1)))
    return out


def stats(xs):
    n = len(xs)
    mean = sum(xs) / n
    sd = (sum((x - mean) ** 2 for x in xs) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return mean, sd


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "target/seeds"
    groups = [
        ("scratchnet", "scratch"),
        ("PyTorch, same initial weights", "torch"),
        ("PyTorch, PyTorch-style initial weights", "ttorch"),
    ]
    print("| run | seeds | last-epoch val_acc per seed | mean ± sd | min-max | mean of epochs 8-10 | "
          "swing: mean abs change, epochs 5-10 |")
    print("|---|---|---|---|---|---|---|")
    for label, prefix in groups:
        runs = {}
        for p in glob.glob(os.path.join(d, f"{prefix}_*.log")):
            seed = int(re.search(r"_(\d+)\.log$", p).group(1))
            a = accs(p)
            if len(a) == 10:
                runs[seed] = a
        if not runs:
            continue
        seeds = sorted(runs)
        last = [runs[s][-1] for s in seeds]
        tail = [sum(runs[s][-3:]) / 3 for s in seeds]
        m, sd = stats(last)
        mt, sdt = stats(tail)
        swing = stats([abs(runs[s][e] - runs[s][e - 1]) for s in seeds for e in range(5, 10)])[0]
        print(f"| {label} | {', '.join(map(str, seeds))} | {' '.join(f'{x:.3f}' for x in last)} | "
              f"{m:.3f} ± {sd:.3f} | {min(last):.3f}-{max(last):.3f} | {mt:.3f} ± {sdt:.3f} | {swing:.3f} |")


if __name__ == "__main__":
    main()
