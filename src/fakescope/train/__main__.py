"""`python -m fakescope.train --data DIR ...`: same as `fakescope train`."""

from fakescope.cli import app

if __name__ == "__main__":
    app(["train", *__import__("sys").argv[1:]])
