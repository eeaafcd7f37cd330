"""Benchmark the video pipeline on the bundled sample clips (or clips given as arguments).

python benchmarks/bench_video.py [CLIP ...]      # same as `fakescope bench video`
"""

import sys

from fakescope.cli import app

if __name__ == "__main__":
    app(["bench", "video", *sys.argv[1:]])
