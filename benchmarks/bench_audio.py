"""Benchmark the audio pipeline: real-time factor (processing time ÷ audio duration) of the default audio model.

python benchmarks/bench_audio.py [AUDIO ...]      # same as `fakescope bench audio`
"""

import sys

from fakescope.cli import app

if __name__ == "__main__":
    app(["bench", "audio", *sys.argv[1:]])
