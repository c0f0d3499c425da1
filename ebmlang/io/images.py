"""PNG files for 2-D binary families, with zlib and struct only (no imaging dependency).

`read_png` reads any non-interlaced PNG (greyscale, RGB, palette, with or without alpha, bit
depths 1 to 16) as grey levels 0..255 and an alpha mask; `write_png` writes 8-bit greyscale.
For a binary family the lower value is black (0) and the higher white (255); reading, a grey
level >= 128 is the higher value and a pixel with alpha < 128 is missing.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from ebmlang.errors import UserError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}     # colour type -> samples per pixel


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


SOFTWARE = _chunk(b"tEXt", b"Software\x00ebmlang")  # marks the pictures ebmlang writes


def encode_png(grey: np.ndarray) -> bytes:
    """8-bit greyscale PNG bytes of a (height, width) array of 0..255."""
    img = np.clip(np.rint(np.asarray(grey, float)), 0, 255).astype(np.uint8)
    h, w = img.shape
    raw = np.hstack([np.zeros((h, 1), np.uint8), img]).tobytes()   # filter 0 on every row
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + SOFTWARE + \
        _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def tag_png(data: bytes) -> bytes:
    """PNG bytes (another program's) with ebmlang's Software text chunk after the header, so
    that a later run recognizes the file as its own output (outputs.claim)."""
    if not data.startswith(SIGNATURE + b"\x00\x00\x00\x0dIHDR"):
        return data
    end = len(SIGNATURE) + 25  # length, type, 13 bytes of header, CRC
    return data[:end] + SOFTWARE + data[end:]


def write_png(path, grey: np.ndarray) -> None:
    """Atomically write a greyscale image."""
    from ebmlang.io.csvio import atomic_write_bytes
    atomic_write_bytes(path, encode_png(grey))


def binary_to_grey(values: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """A binary family's values as black (lower value) and white (higher value)."""
    return np.where(values == domain[1], 255, 0)


def grey_to_binary(grey: np.ndarray, alpha: np.ndarray | None, domain: np.ndarray) -> np.ndarray:
    """Grey levels as a binary family's values: >= 128 the higher value; NaN where transparent."""
    out = np.where(grey >= 128, domain[1], domain[0]).astype(float)
    return out if alpha is None else np.where(alpha >= 128, out, np.nan)


def _chunks(data: bytes, path: str):
    if not data.startswith(SIGNATURE):
        raise UserError("not a PNG file (bad signature)", file=path)
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            break
        yield kind, body
        pos += 12 + length
        if kind == b"IEND":
            return
    raise UserError("truncated PNG file", file=path)


def read_png(path) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey levels (height, width) in 0..255, alpha in 0..255 or None)."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise UserError(f"cannot read PNG file: {exc.strerror or exc}", file=path) from None
    parts: dict[bytes, list[bytes]] = {}
    for kind, body in _chunks(data, path):
        parts.setdefault(kind, []).append(body)
    if b"IHDR" not in parts or b"IDAT" not in parts:
        raise UserError("PNG file without an image header or data", file=path)
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", parts[b"IHDR"][0])
    if ctype not in CHANNELS or interlace:
        raise UserError("unsupported PNG (interlaced, or an unknown colour type): save it "
                        "as plain greyscale", file=path)
    try:
        raw = zlib.decompress(b"".join(parts[b"IDAT"]))
    except zlib.error:
        raise UserError("corrupt PNG image data", file=path) from None
    samples = _unfilter(raw, w, h, depth, CHANNELS[ctype], path)
    return _to_grey(samples, ctype, depth, parts)


def _unfilter(raw: bytes, w: int, h: int, depth: int, channels: int, path: str) -> np.ndarray:
    """The samples (h, w, channels) of decompressed, filtered scanlines."""
    stride = (w * channels * depth + 7) // 8
    bpp = max(1, channels * depth // 8)
    if len(raw) < h * (stride + 1):
        raise UserError("truncated PNG image data", file=path)
    rows = np.frombuffer(raw[:h * (stride + 1)], np.uint8).reshape(h, stride + 1)
    out = np.zeros((h, stride), np.int64)
    prev = np.zeros(stride, np.int64)
    for r in range(h):
        kind, line = rows[r, 0], rows[r, 1:].astype(np.int64)
        if kind == 1:
            line = _sub(line, bpp)
        elif kind == 2:
            line = (line + prev) % 256
        elif kind in (3, 4):
            line = _sequential(line, prev, bpp, kind)
        elif kind != 0:
            raise UserError(f"corrupt PNG (filter type {kind} in row {r + 1})", file=path)
        out[r] = prev = line
    packed = out.astype(np.uint8)
    if depth < 8:
        bits = np.unpackbits(packed, axis=1).reshape(h, -1, depth)
        vals = (bits * (1 << np.arange(depth - 1, -1, -1))).sum(axis=2)
        return vals[:, :w * channels].reshape(h, w, channels)
    if depth == 16:
        packed = packed[:, 0::2]                        # the high byte of each sample
    return packed[:, :w * channels].reshape(h, w, channels).astype(np.int64)


def _sub(line: np.ndarray, bpp: int) -> np.ndarray:
    n = len(line)
    pad = (-n) % bpp
    grid = np.concatenate([line, np.zeros(pad, np.int64)]).reshape(-1, bpp)
    return (np.cumsum(grid, axis=0) % 256).reshape(-1)[:n]


def _sequential(line, prev, bpp, kind) -> np.ndarray:
    """The Average (3) and Paeth (4) filters, byte by byte."""
    out = line.copy()
    for i in range(len(out)):
        a = out[i - bpp] if i >= bpp else 0
        b = prev[i]
        if kind == 3:
            out[i] = (out[i] + (a + b) // 2) % 256
            continue
        c = prev[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out[i] = (out[i] + pred) % 256
    return out


def _to_grey(s: np.ndarray, ctype: int, depth: int, parts) -> tuple[np.ndarray, np.ndarray | None]:
    top = (1 << min(depth, 8)) - 1
    if ctype == 3:
        plte = np.frombuffer(parts.get(b"PLTE", [b""])[0], np.uint8).reshape(-1, 3)
        idx = np.clip(s[..., 0], 0, max(len(plte) - 1, 0))
        rgb = plte[idx].astype(float) if len(plte) else np.zeros(idx.shape + (3,))
        trns = np.frombuffer(parts.get(b"tRNS", [b""])[0], np.uint8)
        alpha = None if not len(trns) else \
            np.where(idx < len(trns), trns[np.minimum(idx, len(trns) - 1)], 255)
        return rgb @ [0.299, 0.587, 0.114], alpha
    scaled = s * (255.0 / top)
    if ctype in (0, 4):
        grey = scaled[..., 0]
    else:
        grey = scaled[..., :3] @ [0.299, 0.587, 0.114]
    alpha = scaled[..., -1] if ctype in (4, 6) else None
    return grey, alpha
