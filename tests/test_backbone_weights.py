"""Backbone weights from a saved timm state dict (.pth and .safetensors): every backbone tensor
equals the file's, and a file that does not fit names its missing and unexpected keys."""

from __future__ import annotations

import re

import pytest
import timm
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from iis_pipe import models
from iis_pipe.cli.main import main

NAME = "ghostnet_050"


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(3)
    net = timm.create_model(NAME, pretrained=False)
    with torch.no_grad():  # BN statistics away from their init, so that they are checked too
        for name, buf in net.named_buffers():
            if "running_mean" in name:
                buf.uniform_(-1, 1)
    return net.state_dict()


def _timm_key(backbone_key: str) -> str:
    # features_only flattens timm's top-level sequences: blocks_3.0.conv -> blocks.3.0.conv
    return re.sub(r"^blocks_(\d+)", r"blocks.\1", backbone_key)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_every_backbone_tensor_comes_from_the_file(classifier, tmp_path, suffix):
    path = tmp_path / f"{NAME}{suffix}"
    if suffix == ".pth":
        torch.save({"state_dict": classifier, "epoch": 3}, path)  # a checkpoint dict
    else:
        save_file({k: v.contiguous() for k, v in classifier.items()}, str(path))
    model = models.create(f"timm:{NAME}", backbone_weights=str(path))
    got = model.backbone.state_dict()
    assert len(got) > 300
    for k, v in got.items():
        assert torch.equal(v, classifier[_timm_key(k)]), k
    fresh = models.create(f"timm:{NAME}").backbone.state_dict()
    assert not torch.equal(fresh["conv_stem.weight"], got["conv_stem.weight"])


def test_missing_and_unexpected_keys_are_named(classifier, tmp_path):
    state = dict(classifier)
    del state["blocks.2.0.ghost1.primary_conv.0.weight"]
    state["head.extra.weight"] = torch.zeros(3)
    state["conv_stem.weight"] = torch.zeros(7, 3, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(models.BackboneWeightsError) as err:
        models.create(f"timm:{NAME}", backbone_weights=tmp_path / "bad.pth")
    msg = str(err.value)
    assert "bad.pth" in msg and f"not timm '{NAME}' weights" in msg
    assert "1 missing keys: blocks.2.0.ghost1.primary_conv.0.weight" in msg
    assert "1 unexpected keys: head.extra.weight" in msg
    assert "conv_stem.weight (7, 3, 3, 3) vs (8, 3, 3, 3)" in msg
    # other model's weights: many keys named, the list cut short
    other = timm.create_model("resnet10t", pretrained=False).state_dict()
    torch.save(other, tmp_path / "resnet.pth")
    with pytest.raises(models.BackboneWeightsError, match=r"missing keys: .* and \d+ more"):
        models.create(f"timm:{NAME}", backbone_weights=tmp_path / "resnet.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(models.BackboneWeightsError, match="junk.safetensors: not readable"):
        models.create(f"timm:{NAME}", backbone_weights=tmp_path / "junk.safetensors")


def test_train_cli_names_the_keys_without_a_traceback(classifier, tmp_path):
    state = dict(classifier)
    del state["bn1.weight"]
    torch.save(state, tmp_path / "w.pth")
    res = CliRunner().invoke(main, ["train", str(tmp_path), "-o", str(tmp_path / "run"),
                                    "-m", f"timm:{NAME}", "--backbone-weights",
                                    str(tmp_path / "w.pth")])
    assert res.exit_code == 1 and "missing keys: bn1.weight" in res.output, res.output
    assert "Traceback" not in res.output
