"""Real decoders on real images: the zxing photo samples and passes rendered by segno."""

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from kiosk.adapters.decoders import SafeDecoder, make_decoder
from kiosk.adapters.frames import expand_images, load_grey
from testkit import DATA, NOW
from workbench.render import camera_frame, qr_image

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not beside the repo")


def labelled(folder):
    for img in expand_images([DATA / folder]):
        txt = img.with_suffix(".txt")
        yield img, txt.read_bytes().decode("utf-8") if txt.exists() else None


@needs_data
@pytest.mark.parametrize("folder,at_least", [("qrcode-1", 8), ("qrcode-3", 16), ("qrcode-6", 12)])
def test_default_decoder_reads_real_photos(folder, at_least):
    decoder = make_decoder("zxing")
    ok = wrong = 0
    for img, expected in labelled(folder):
        texts = decoder.decode(load_grey(img))
        ok += expected in texts
        wrong += any(t != expected for t in texts)
    assert ok >= at_least and wrong == 0


@needs_data
def test_default_decoder_reads_at_least_92_percent_of_the_photo_set_and_never_wrongly():
    decoder = make_decoder()
    ok = total = wrong = 0
    for i in range(1, 7):
        for img, expected in labelled(f"qrcode-{i}"):
            texts = decoder.decode(load_grey(img))
            total += 1
            ok += expected in texts
            wrong += any(t != expected for t in texts if expected is not None)
    assert total == 137 and ok / total >= 0.92, (ok, total)
    assert wrong <= 1  # qrcode-2 holds one photo with a second, different code in view


@needs_data
@pytest.mark.parametrize("name", ["zxing", "pyzbar"])
def test_no_decode_from_photos_without_a_code(name):
    decoder = make_decoder(name)
    images = expand_images([DATA / "falsepositives-1", DATA / "falsepositives-2"])
    assert len(images) >= 40
    found = [p.name for p in images if (g := load_grey(p)) is not None and decoder.decode(g)]
    assert found == []


@needs_data
def test_decoder_errors_are_caught_and_counted_over_the_whole_set():
    """pyzbar raises on some images of this set (structured append); none escapes."""
    decoder = make_decoder("pyzbar")
    for img in expand_images([DATA / f"qrcode-{i}" for i in range(1, 7)]):
        grey = load_grey(img)
        if grey is not None:
            assert isinstance(decoder.decode(grey), list)
    assert decoder.errors >= 0


def test_safe_decoder_counts_failures():
    class Broken:
        name = "broken"

        def decode(self, grey):
            raise ValueError("not a valid ZBarOrientation")

    d = SafeDecoder(Broken())
    assert d.decode(np.zeros((10, 10), np.uint8)) == [] and d.errors == 1


@pytest.mark.parametrize("name", ["zxing", "pyzbar"])
def test_both_decoders_read_a_pass_in_a_camera_like_frame(name, make_pass, tmp_path):
    text = make_pass(2)
    rng = np.random.default_rng(3)
    decoder = make_decoder(name)
    frames = [
        camera_frame(text, rng, code_px=240),
        camera_frame(text, rng, code_px=200, angle=20, tilt=0.1, blur=0.8),
    ]
    for i, f in enumerate(frames):  # through a real PNG file
        cv2.imwrite(str(tmp_path / f"{i}.png"), f)
        assert decoder.decode(load_grey(tmp_path / f"{i}.png")) == [text]
    assert decoder.decode(camera_frame(None, rng)) == []


def test_rendered_qr_image_is_exact():
    img = qr_image("VC1:ABC", module_px=3)
    assert img.dtype == np.uint8 and set(np.unique(img)) == {0, 255}
    assert make_decoder("zxing").decode(img) == ["VC1:ABC"]


# -- what a camera really sees -------------------------------------------------------------------
def _raw_zxing(frame):
    import zxingcpp

    return [b.text for b in zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.QRCode)]


def _pyzbar(frame):
    from pyzbar import pyzbar

    return [
        s.data.decode("utf-8", "replace") for s in pyzbar.decode(frame, symbols=[pyzbar.ZBarSymbol.QRCODE])
    ]


@pytest.fixture(scope="module")
def door_passes(authority):
    from sync.central.issuing import issue_pass

    # Fixed times and pass ids: the same six codes, so the same frames, on every run.
    issued = datetime.fromtimestamp(NOW, UTC)
    return [
        issue_pass(
            authority, risk=i % 3, issued=issued, expires=issued + timedelta(days=7), pass_id=bytes([i]) * 16
        )[0]
        for i in range(6)
    ]


@pytest.mark.parametrize("condition", ["plain", "small", "dim", "thumb", "backlight", "defocus-near"])
def test_the_kiosk_decoder_reads_at_least_what_raw_zxing_does_and_never_a_wrong_text(condition, door_passes):
    from workbench.render import condition_frame

    rng = np.random.default_rng(11)
    decoder = make_decoder("zxing")
    raw = kiosk = 0
    for i in range(24):
        text = door_passes[i % len(door_passes)]
        frame = condition_frame(text, condition, rng)
        got = decoder.decode(frame)
        assert set(got) <= {text}  # never a wrong text
        kiosk += text in got
        raw += text in _raw_zxing(frame)
    assert kiosk >= raw, (kiosk, raw)
    if condition == "dim":  # the second look's job
        assert kiosk >= 18 and kiosk >= raw + 10, (kiosk, raw)


def test_dim_frames_of_a_held_pass_are_read_together_when_one_alone_is_not(door_passes):
    """Several frames of the same pass carry the same code and independent sensor noise:
    averaged, they read where no single frame does (2.2% of full brightness)."""
    from workbench.render import camera_frame

    text = door_passes[1]
    alone = together = averaged = 0
    for trial in range(16):
        rng = np.random.default_rng(trial)
        clean = camera_frame(text, rng, code_px=220, angle=7, noise=0).astype(np.float32) * 0.022
        frames = [
            np.clip(rng.poisson(clean * 2.0) / 2.0 + rng.normal(0, 1.2, clean.shape), 0, 255).astype(np.uint8)
            for _ in range(4)
        ]
        alone += any(text in make_decoder("zxing").decode(f) for f in frames)  # no memory
        decoder = make_decoder("zxing")
        together += any(text in decoder.decode(f) for f in frames)
        averaged += decoder.inner.looks["dim_average"]
    assert together > alone and averaged >= 3, (together, alone, averaged)


@needs_data
@pytest.mark.parametrize("how", ["fit", "fill"])
def test_photos_in_camera_frames_the_kiosk_reads_what_raw_zxing_or_pyzbar_reads(how):
    from workbench.render import framed

    decoder = make_decoder("zxing")
    missed = []
    for i in range(1, 7):
        for img, expected in labelled(f"qrcode-{i}"):
            if expected is None:
                continue
            frame = framed(load_grey(img), how)
            got = decoder.decode(frame)
            raw, zbar = _raw_zxing(frame), _pyzbar(frame)
            # Nothing but the labelled text, or another code really in the photo (one shows
            # a code inside a code) that a plain decoder reads too.
            assert set(got) <= {expected, *raw, *zbar}, img
            either = expected in raw or expected in zbar
            if either and expected not in got:
                missed.append(f"qrcode-{i}/{img.name}")
    # One photo, fitted, is read by pyzbar alone and located by neither of zxing-cpp's
    # looks (so no second look is tried on it): the known gap, in the note.
    assert missed == ([] if how == "fill" else ["qrcode-2/10.png"]), missed
