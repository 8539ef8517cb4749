"""`python -m pipeline.toyworld train [...]`: reproduce the toy-world weights on this machine."""

import sys

from pipeline.toyworld.train import main

if __name__ == "__main__":
    if sys.argv[1:2] != ["train"]:
        sys.exit("usage: python -m pipeline.toyworld train [--minutes 55] [--seed 0] [--out FOLDER] (see train --help)")
    main(sys.argv[2:])
