"""The profiling commands' building blocks: every listed decoder really decodes, and the loader
profile accounts for every stage (no timing asserted here: figures live in benchmarks/)."""

from __future__ import annotations

import numpy as np
import pytest
import simplejpeg

from iis_pipe.pipelines.prepare import prepare
from iis_pipe.profiling.decode import _decoders, shard_jpegs
from iis_pipe.profiling.loader import profile_loader
from iis_pipe.stream import stream_config


@pytest.mark.realdata
def test_every_decoder_gives_the_image(grabcut_dir):
    jpegs = [p.read_bytes() for p in sorted((grabcut_dir / "data_GT").glob("*.jpg"))[:3]]
    decoders = _decoders()
    assert {"cv2", "simplejpeg", "PIL", "torchvision"} <= set(decoders)
    for data in jpegs:
        ref = simplejpeg.decode_jpeg(data, colorspace="RGB").astype(np.float32)
        h, w = ref.shape[:2]
        for name, scales in decoders.items():
            for scale, fn in scales.items():
                img = np.asarray(fn(data))
                if name == "torchvision":  # (3, H, W) tensor
                    img = img.transpose(1, 2, 0)
                if name == "cv2":
                    img = img[..., ::-1]  # BGR
                if scale == "full":
                    want = ref
                elif scale == "1/2":
                    want = ref[::2, ::2][:img.shape[0], :img.shape[1]]
                    assert img.shape[:2] == (-(-h // 2), -(-w // 2)), (name, scale)
                else:  # "win": at least the centred window of half the height and width
                    assert img.shape[0] >= h // 2 and img.shape[1] >= w // 2
                    continue
                assert img.shape[:2] == want.shape[:2], (name, scale)
                # other IDCTs and resampling: close, not equal
                assert np.abs(img.astype(np.float32) - want).mean() < 12, (name, scale)


def test_loader_profile_accounts_for_every_stage(tmp_path):
    out = tmp_path / "toy"
    prepare("toy", out, source_options={"count": 12}, workers=1, progress=False)
    assert shard_jpegs(out), "toy records carry JPEG images"
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    with pytest.warns(UserWarning, match="bad.tar"):
        assert shard_jpegs([str(bad)]) == []
    cfg = stream_config(out, batch_size=3, crop_size=(64, 96), max_num_points=4)
    res = profile_loader(cfg, 0, 2, progress=False)
    assert res.samples == 6 and res.samples_per_s > 0
    assert {"read", "region", "fit", "decode", "resize", "photometric", "masks", "distances",
            "clicks", "collate"} <= set(res.stages)
    assert all(v > 0 for v in res.stages.values())
