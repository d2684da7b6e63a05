"""Plot SN-Net tables: every configuration of the LS-initialised run, its Pareto front and the other runs.

    python experiments/plot_stitch.py --main runs/stitch_cifar10_ls/configs.json \
        --other "random init, trained=runs/stitch_cifar10_random/configs.json" \
        --other "LS init, untrained=runs/stitch_cifar10_ls_untrained/configs.json" \
        --out experiments/plots/stitch_cifar10_r20_r32_r56.png
"""

from __future__ import annotations

import argparse

from hyperzoo.stitch.select import load_table, plot_front


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--main", required=True, help="configs.json whose front is drawn")
    p.add_argument("--other", action="append", default=[], help="LABEL=configs.json, drawn as points")
    p.add_argument("--title", default="SN-Net, CIFAR-10 (JPEG): ResNet-20 + 32 + 56, LS init, 1 epoch")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    others = {}
    for item in args.other:
        label, path = item.split("=", 1)
        others[label] = load_table(path)
    plot_front(load_table(args.main), args.out, title=args.title, others=others)


if __name__ == "__main__":
    main()
