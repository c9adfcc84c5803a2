"""iis_pipe.models: the (image, click_maps, prev_mask) -> logits contract, fusion, checkpoints.

Random init only (no weights are downloaded); small inputs keep the whole file CPU-cheap.
"""

from __future__ import annotations

import pytest
import timm
import torch

from iis_pipe import models
from iis_pipe.models import CheckpointError
from iis_pipe.models.fusion import Conv1S

B, H, W = 2, 64, 96


def inputs(seed: int = 0, h: int = H, w: int = W):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(B, 3, h, w, generator=g)
    clicks = torch.zeros(B, 2, h, w)
    clicks[:, 0, 20:28, 30:38] = 1.0  # one positive disk-ish blob per sample
    prev = torch.zeros(B, 1, h, w)
    return image, clicks, prev


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny inputs gain nothing from threads, and on a shared machine OpenMP barriers stall for
    seconds per op when a core is taken; restored afterwards for the other test files."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def built():
    """One instance per registered name, seeded, in eval mode (BN running stats, so outputs
    depend on the inputs only)."""
    cache = {}

    def get(name: str, **kwargs):
        key = (name, tuple(sorted(kwargs.items())))
        if key not in cache:
            torch.manual_seed(0)
            cache[key] = models.create(name, **kwargs).eval()
        return cache[key]

    return get


@pytest.mark.parametrize("name", models.available())
def test_registered_model_gives_logits_at_input_size(built, name):
    model = built(name)
    with torch.no_grad():
        out = model(*inputs())
    assert out.shape == (B, 1, H, W)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", models.available())
def test_bf16_autocast_forward_and_backward(name):
    # what AMP training on a GPU runs, on CPU: in-place fusion must follow the autocast dtype
    torch.manual_seed(0)
    model = models.create(name).train()
    with torch.autocast("cpu", torch.bfloat16):
        out = model(*inputs())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    out.float().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_any_timm_backbone_by_prefix():
    model = models.create("timm:resnet18", fusion="conv1s").eval()
    with torch.no_grad():
        out = model(*inputs(h=96, w=128))
    assert out.shape == (B, 1, 96, 128)
    assert model.config["kwargs"]["backbone"] == "resnet18"
    assert model.stem_name == "conv1"


@pytest.mark.parametrize("name,branch", [("hrnet18s-conv1s", "maps_branch"),
                                         ("vit-s-simpleclick", "maps_embed")])
def test_gradients_reach_the_click_branch(name, branch):
    torch.manual_seed(0)
    model = models.create(name).train()
    image, clicks, prev = inputs()
    prev[:, :, 10:40, 20:60] = 1.0
    model(image, clicks, prev).square().mean().backward()
    for pname, param in getattr(model, branch).named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"{branch}.{pname}"


@pytest.mark.parametrize("name", ["hrnet18s-conv1s", "hrnet18s-cat", "vit-s-simpleclick"])
def test_clicks_and_previous_mask_change_the_output(built, name):
    model = built(name)
    image, clicks, prev = inputs()
    moved = torch.roll(clicks, shifts=(30, 40), dims=(2, 3))
    prev_on = prev.clone()
    prev_on[:, :, 10:40, 20:60] = 1.0
    with torch.no_grad():
        base = model(image, clicks, prev)
        by_clicks = model(image, moved, prev)
        by_mask = model(image, clicks, prev_on)
    assert (base - by_clicks).abs().max() > 1e-5
    assert (base - by_mask).abs().max() > 1e-5


@pytest.mark.parametrize("name", ["hrnet18s-none", "vit-s-none"])
def test_fusion_none_ignores_clicks_and_mask(built, name):
    model = built(name)
    image, clicks, prev = inputs()
    with torch.no_grad():
        base = model(image, clicks, prev)
        other = model(image, torch.rand_like(clicks), torch.ones_like(prev))
        other_image = model(torch.rand_like(image), clicks, prev)
    assert torch.equal(base, other)
    assert not torch.equal(base, other_image)  # ...but does look at the image


def test_fusion_hook_does_not_outlive_the_call(built):
    model = built("hrnet18s-conv1s")
    stem = model.backbone.get_submodule(model.stem_name)
    with torch.no_grad():
        model(*inputs())
    assert len(stem._forward_hooks) == 0
    with pytest.raises(ValueError):  # an input error mid-way leaves no hook behind either
        model(torch.rand(B, 3, H, W), torch.rand(B, 2, H, W), torch.rand(B, 2, H, W))
    assert len(stem._forward_hooks) == 0


def test_input_contract_is_checked(built):
    model = built("hrnet18s-conv1s")
    with pytest.raises(ValueError, match="multiples of 32"):
        model(*inputs(h=64, w=80))
    image, clicks, prev = inputs()
    with pytest.raises(ValueError, match="click_maps"):
        model(image, clicks[:, :1], prev)
    with pytest.raises(ValueError, match="fusion must be one of"):
        models.create("hrnet18s-conv1s", fusion="late")


def test_save_load_round_trip_is_exact(tmp_path):
    torch.manual_seed(1)
    model = models.create("hrnet18s-conv1s", head_channels=32)
    model(*inputs())  # one train-mode step moves the BN running stats off their init
    model.eval()
    path = models.save(model, tmp_path / "ckpt" / "m.pt", epoch=7)
    loaded = models.load(path).eval()
    again = models.create("hrnet18s-conv1s", checkpoint=path, head_channels=32).eval()
    with torch.no_grad():
        want = model(*inputs(seed=3))
        assert torch.equal(loaded(*inputs(seed=3)), want)
        assert torch.equal(again(*inputs(seed=3)), want)
    assert loaded.config == model.config
    assert models.read_checkpoint(path)["epoch"] == 7


def test_checkpoint_of_another_config_is_refused(tmp_path):
    path = models.save(models.create("hrnet18s-conv1s"), tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="fusion: checkpoint 'conv1s' vs asked 'cat'"):
        models.create("hrnet18s-cat", checkpoint=path)
    with pytest.raises(CheckpointError, match="head_channels"):
        models.create("hrnet18s-conv1s", checkpoint=path, head_channels=32)


def test_bad_checkpoint_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        models.load(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an iis_pipe.models checkpoint"):
        models.load(tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        models.load(tmp_path / "junk.pt")
    model = models.create("hrnet18s-none")
    sd = model.state_dict()
    sd.pop("head.classify.weight")
    torch.save({"config": model.config, "state_dict": sd}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="weights do not fit.*head.classify.weight"):
        models.load(tmp_path / "partial.pt")


@pytest.mark.parametrize("url", ["https://example.com/m.pt", "hf-hub:timm/hrnet_w18_small",
                                 "s3://bucket/m.pt"])
def test_urls_and_hub_ids_are_refused(url):
    with pytest.raises(ValueError, match="refused"):
        models.load(url)
    with pytest.raises(ValueError, match="refused"):
        models.create("hrnet18s-conv1s", checkpoint=url)
    with pytest.raises(ValueError, match="refused"):
        models.create("hrnet18s-conv1s", backbone_weights=url)


def test_backbone_weights_from_a_local_file(tmp_path):
    torch.manual_seed(5)
    classifier = timm.create_model("hrnet_w18_small", pretrained=False)
    torch.save(classifier.state_dict(), tmp_path / "hrnet.pth")
    model = models.create("hrnet18s-conv1s", backbone_weights=tmp_path / "hrnet.pth")
    assert torch.equal(model.backbone.conv1.weight, classifier.conv1.weight)
    assert torch.equal(model.backbone.stage4[0].branches[3][0].conv1.weight,
                       classifier.stage4[0].branches[3][0].conv1.weight)
    path = models.save(model, tmp_path / "m.pt")
    # the state dict carries the weights; the backbone file is not needed to load it
    assert "backbone_weights" not in models.read_checkpoint(path)["config"]["kwargs"]
    (tmp_path / "hrnet.pth").unlink()
    assert torch.equal(models.load(path).backbone.conv1.weight, classifier.conv1.weight)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="hrnet18s-conv1s"):
        models.create("unet")


def test_conv1s_in_place_accumulation_matches_a_plain_1x1_conv():
    torch.manual_seed(0)
    stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
    branch = Conv1S(stem, hidden=4, init_scale=0.3)
    maps = torch.rand(B, 3, 32, 48)
    hidden = branch(maps)
    assert hidden.shape == (B, 4, 16, 24)
    image_feats = stem(torch.rand(B, 3, 32, 48))
    want = image_feats + 0.3 * torch.nn.functional.conv2d(hidden, branch.project.weight)
    got = branch.add_to(image_feats.clone(), hidden)
    torch.testing.assert_close(got, want)
    assert got.shape == image_feats.shape
