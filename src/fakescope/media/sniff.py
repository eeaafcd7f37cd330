"""What a file is, from its first bytes (magic numbers), never from its extension.

A renamed file is still handled and a text file called `.mp4` is refused. Uploads are
sniffed here too, before they are stored.
"""

from __future__ import annotations

from fakescope.constants import MediaKind

# Bytes read from the start of a file: enough for every signature here (a bare MP3 needs its second frame).
HEAD_BYTES = 4096
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_FTYP_AUDIO = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_FTYP_IMAGE = {
    b"avif": "avif",
    b"avis": "avif",
    b"heic": "heic",
    b"heix": "heic",
    b"mif1": "heif",
    b"msf1": "heif",
}
# kbit/s by (MPEG-1?, layer bits): layer bits 3 = Layer I, 2 = Layer II, 1 = Layer III.
_MP3_BITRATES = {
    (True, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}


def sniff_kind(head: bytes) -> tuple[MediaKind, str] | None:
    """Kind and format name from the first bytes of a file, or None if not recognised.

    `HEAD_BYTES` are enough for every signature here (a bare MP3 needs its second frame).
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image", "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image", "tiff"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES:
        return "image", "bmp"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return _sniff_riff(head[8:12])
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio", "aiff"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_ftyp(head[8:12])
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "webm" if b"webm" in head[:64] else "matroska"
    if head.startswith(b"FLV\x01"):
        return "video", "flv"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "video", "mpeg"
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return "video", "mpegts"
    if head.startswith(b"fLaC"):
        return "audio", "flac"
    if head.startswith(b"OggS"):
        return "audio", "ogg"
    if head.startswith(b"ID3"):
        return "audio", "mp3"
    return _sniff_mpeg_audio(head)


def _sniff_riff(form: bytes) -> tuple[MediaKind, str] | None:
    return {b"WEBP": ("image", "webp"), b"AVI ": ("video", "avi"), b"WAVE": ("audio", "wav")}.get(form)


def _sniff_ftyp(brand: bytes) -> tuple[MediaKind, str]:
    """ISO base media files: the major brand tells audio-only and still-image files apart."""
    if brand in _FTYP_AUDIO:
        return "audio", "m4a"
    if brand in _FTYP_IMAGE:
        return "image", _FTYP_IMAGE[brand]
    if brand == b"qt  ":
        return "video", "mov"
    if brand == b"M4V ":
        return "video", "m4v"
    if brand.startswith((b"3gp", b"3g2")):
        return "video", "3gp"
    return "video", "mp4"


def _sniff_mpeg_audio(head: bytes) -> tuple[MediaKind, str] | None:
    """A bare MP3 or ADTS AAC stream: a frame header whose length leads to a second header.

    One 11-bit sync word alone matches 1 in ~3000 random files, so the next frame is checked.
    """
    if len(head) < 6 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0x06 == 0:
        if head[1] & 0xF6 != 0xF0:
            return None
        length = ((head[3] & 0x03) << 11) | (head[4] << 3) | (head[5] >> 5)
        name = "aac"
    else:
        length = _mp3_frame_length(head)
        name = "mp3"
    if length < 7:
        return None
    if length + 2 <= len(head) and not (head[length] == 0xFF and head[length + 1] & 0xE0 == 0xE0):
        return None
    return "audio", name


def _mp3_frame_length(head: bytes) -> int:
    """Bytes in the MPEG audio frame starting at head[0], 0 for an invalid or free-format header."""
    version, layer = (head[1] >> 3) & 0x3, (head[1] >> 1) & 0x3
    bitrate_index, rate_index, padding = head[2] >> 4, (head[2] >> 2) & 0x3, (head[2] >> 1) & 0x1
    if version == 1 or bitrate_index in (0, 0xF) or rate_index == 3:
        return 0
    mpeg1 = version == 3
    table = _MP3_BITRATES[(mpeg1, layer)] if (mpeg1 or layer == 3) else _MP3_BITRATES[(False, 2)]
    bitrate = table[bitrate_index] * 1000
    rate = (44100, 48000, 32000)[rate_index] >> {3: 0, 2: 1, 0: 2}[version]
    if layer == 3:
        return (12 * bitrate // rate + padding) * 4
    return (144 if (mpeg1 or layer == 2) else 72) * bitrate // rate + padding
