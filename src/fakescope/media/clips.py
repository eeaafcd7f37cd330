"""Write video clips of an exact length cut from real footage, for benchmarks and tests."""

from __future__ import annotations

from pathlib import Path

import av

from fakescope.errors import CorruptMediaError, UnsupportedMediaError


def copy_clip(source: str | Path, out: str | Path, seconds: float) -> Path:
    """A `seconds`-long clip of the video stream, packets copied (no re-encoding), looped when the source is shorter:
    benchmarks and tests get clips of an exact length from real footage."""
    out = Path(out)
    with av.open(str(source)) as src:
        if not src.streams.video:
            raise UnsupportedMediaError(f"{Path(source).name}: no video stream to copy")
    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        base = stream.time_base
        offset, last_end = 0, 0
        while True:
            src.seek(0)
            for packet in src.demux(stream):
                if packet.pts is None or packet.dts is None:
                    continue
                pts = packet.pts + offset
                if float(pts * base) >= seconds:
                    return out
                last_end = max(last_end, pts + (packet.duration or 1))
                packet.pts, packet.dts = pts, packet.dts + offset
                packet.stream = copy
                dst.mux(packet)
            if last_end == offset:
                raise CorruptMediaError(f"{Path(source).name}: no video packets to copy")
            offset = last_end
