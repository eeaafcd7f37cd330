"""`python -m fakescope.train CONFIG.yaml [key=value ...]`: same as `fakescope train`."""

import sys

from fakescope.cli import app

if __name__ == "__main__":
    app(["train", *sys.argv[1:]])
