"""load_image: every pixel mode comes out as 8-bit RGB or RGBA; every refusal says what is wrong."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from inference_server.errors import InputError
from inference_server.generation.images import has_useful_alpha, load_image


def encode(image, fmt="PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_header_only(width, height) -> bytes:
    """A PNG that declares a size and holds no pixels: enough for the size checks, no memory."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


GRADIENT = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (32, 1))  # 32x64, 0..252


def test_rgb_and_rgba_pass_through(tmp_path):
    rgba = Image.fromarray(np.dstack([GRADIENT] * 3 + [255 - GRADIENT]))
    path = tmp_path / "object.png"
    rgba.save(path)
    loaded = load_image(path)
    assert loaded.mode == "RGBA" and np.array_equal(np.asarray(loaded), np.asarray(rgba))
    with open(path, "rb") as file:
        assert load_image(file).mode == "RGBA"
    rgb = load_image(encode(rgba.convert("RGB")))
    assert rgb.mode == "RGB" and np.array_equal(np.asarray(rgb)[..., 0], GRADIENT)


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    values = (GRADIENT.astype(np.uint16) * 257)  # the 8-bit gradient in 16 bits
    loaded = load_image(encode(Image.fromarray(values)))  # Pillow reads it as I;16
    assert loaded.mode == "RGB"
    assert np.array_equal(np.asarray(loaded)[..., 1], GRADIENT)


def test_32_bit_integer_greyscale():
    image = Image.fromarray(GRADIENT.astype(np.int32) * 257)
    assert image.mode == "I"
    loaded = load_image(encode(image, "TIFF"))
    assert loaded.mode == "RGB" and np.array_equal(np.asarray(loaded)[..., 2], GRADIENT)


def test_greyscale_and_greyscale_with_alpha():
    grey = Image.fromarray(GRADIENT)
    loaded = load_image(encode(grey))
    assert loaded.mode == "RGB" and np.array_equal(np.asarray(loaded), np.dstack([GRADIENT] * 3))
    with_alpha = Image.merge("LA", (grey, Image.fromarray(255 - GRADIENT)))
    loaded = load_image(encode(with_alpha))
    assert loaded.mode == "RGBA" and np.array_equal(np.asarray(loaded)[..., 3], 255 - GRADIENT)


def test_palette_with_and_without_transparency():
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, 16, 32))  # left half blue, right half red
    opaque = load_image(encode(palette))
    assert opaque.mode == "RGB" and opaque.getpixel((0, 0)) == (0, 0, 255) and opaque.getpixel((31, 0)) == (255, 0, 0)
    transparent = load_image(encode(palette, transparency=0))  # red is transparent
    assert transparent.mode == "RGBA"
    assert transparent.getpixel((31, 0))[3] == 0 and transparent.getpixel((0, 0)) == (0, 0, 255, 255)
    assert has_useful_alpha(transparent) and not has_useful_alpha(opaque)


def test_gif_palette_transparency():
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([255, 255, 255, 0, 128, 0] + [0] * 762)
    palette.paste(1, (8, 8, 24, 24))
    loaded = load_image(encode(palette, "GIF", transparency=0))
    assert loaded.mode == "RGBA" and loaded.getpixel((0, 0))[3] == 0 and loaded.getpixel((16, 16))[3] == 255


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red in CMYK
    loaded = load_image(encode(cmyk, "JPEG", quality=95))
    assert loaded.mode == "RGB"
    red, green, blue = loaded.getpixel((16, 16))
    assert red > 200 and green < 60 and blue < 60


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))  # stored: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    loaded = load_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert loaded.size == (20, 40)
    top, bottom = loaded.getpixel((10, 5)), loaded.getpixel((10, 35))
    assert top[0] > 200 and bottom[2] > 200  # red now on top, blue below


def test_refuses_empty_input(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.png is empty") as info:
        load_image(empty)
    assert info.value.http_status == 400


def test_refuses_missing_file(tmp_path):
    with pytest.raises(InputError, match="no image file at"):
        load_image(tmp_path / "nope.png")


def test_refuses_non_images_naming_the_formats_that_work():
    with pytest.raises(InputError, match="PNG .*JPEG") as info:
        load_image(b"%PDF-1.7 this is a document, not a picture", name="scan.pdf")
    assert info.value.http_status == 415 and "scan.pdf" in str(info.value)


def test_refuses_truncated_files():
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(InputError, match="damaged or truncated") as info:
        load_image(data[: len(data) // 2])
    assert info.value.http_status == 400


def test_refuses_too_many_pixels_with_the_size_found():
    with pytest.raises(InputError, match="8000x6000 = 48.0 megapixels; the limit is 40") as info:
        load_image(png_header_only(8000, 6000))
    assert info.value.http_status == 413


def test_pillow_decompression_bomb_becomes_input_error():
    # Pillow itself refuses this at open time, before our own size check
    with pytest.raises(InputError, match="too many pixels") as info:
        load_image(png_header_only(30000, 30000))
    assert info.value.http_status == 413


def test_refuses_absurd_dimensions():
    with pytest.raises(InputError, match="sides longer than 16384") as info:
        load_image(png_header_only(40000, 20))
    assert info.value.http_status == 413
    with pytest.raises(InputError, match="at least 16"):
        load_image(encode(Image.new("RGB", (8, 300))))


def test_refuses_files_over_the_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("inference_server.generation.images.MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.png"
    path.write_bytes(encode(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))))
    with pytest.raises(InputError, match="the limit is") as info:
        load_image(path)
    assert info.value.http_status == 413


def test_webp_with_alpha_and_phone_mpo_jpeg():
    assert load_image(encode(Image.new("RGBA", (32, 32), (255, 0, 0, 128)), "WEBP", lossless=True)).mode == "RGBA"
    mpo = encode(Image.new("RGB", (32, 32), (255, 0, 0)), "MPO", save_all=True,
                 append_images=[Image.new("RGB", (32, 32))])
    loaded = load_image(mpo)
    assert loaded.mode == "RGB" and loaded.getpixel((5, 5))[0] > 200  # the first picture
