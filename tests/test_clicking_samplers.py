"""Training sampler: equal, draw for draw, to the argwhere-based statement of the same protocol on
real masks; clicks land in the sets the rule names; config and count distribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iis_pipe.geometry.distance import distance_to_zero
from iis_pipe.clicking.format import array_to_clicks
from iis_pipe.clicking.reference import sample_clicks_reference
from iis_pipe.clicking.samplers import SamplerConfig, _gamma_probs, distance_window, sample_clicks
from iis_pipe.regions.select import choose_regions

# (sampler config, merge probability, max merged regions)
CONFIGS = [
    (SamplerConfig(), 0.0, 2),
    (SamplerConfig(first_click_center=True), 0.7, 3),
    (SamplerConfig(max_num_points=6, prob_gamma=0.95, expand_ratio=0.3, negative_bg_prob=0.4,
                   negative_other_prob=0.3, negative_border_prob=0.3, positive_erode_iters=6),
     0.0, 2),
]


def _davis_instances(davis_dir: Path, count: int):
    """``(name, (K, H, W) bool instances, ignore or None)`` of evenly spaced DAVIS frames."""
    files = sorted((davis_dir / "gt").glob("*.png"))
    for p in files[:: max(len(files) // count, 1)][:count]:
        a = np.array(Image.open(p))
        ids = [i for i in np.unique(a) if i not in (0, 255)]
        yield p.name, np.stack([a == i for i in ids]), (a == 255) if (a == 255).any() else None


def _transforms(regions):
    inside = np.stack([distance_to_zero(r, pad_border=True) for r in regions])
    outside = np.stack([distance_to_zero(~r) for r in regions])
    return inside, outside


def _compare(name, regions, ignore, seeds, without_dt=True):
    """Fast and reference samples agree for every config and seed, with the precomputed
    transforms and (first seed, or ``without_dt``) without them."""
    inside, outside = _transforms(regions)
    for ci, (cfg, merge_prob, max_merged) in enumerate(CONFIGS):
        for j, seed in enumerate(seeds):
            sel = choose_regions(np.random.default_rng(seed), regions.sum(axis=(1, 2)),
                                 merge_prob, max_merged)
            rest = np.delete(regions, sel, axis=0)
            other = rest.any(axis=0) if len(rest) else None
            for given in (True, False) if without_dt and j == 0 else (True,):
                kw = dict(other=other, ignore=ignore, inside=inside[sel] if given else None,
                          outside=outside[sel] if given else None)
                got = sample_clicks(regions[sel], cfg, np.random.default_rng(seed), **kw)
                ref = sample_clicks_reference(regions[sel], cfg, np.random.default_rng(seed), **kw)
                assert np.array_equal(got, ref), (name, ci, seed, given)
                box = distance_window(regions[sel], cfg)
                if given and box is not None:  # maps over the window the sampler reads only
                    y0, y1, x0, x1 = box
                    win = dict(kw, inside=inside[sel][:, y0:y1, x0:x1],
                               outside=outside[sel][:, y0:y1, x0:x1], origin=(y0, x0))
                    again = sample_clicks(regions[sel], cfg, np.random.default_rng(seed), **win)
                    assert np.array_equal(got, again), (name, ci, seed, "window")
                    short = dict(win, inside=win["inside"][:, -1:],
                                 outside=win["outside"][:, -1:], origin=(y1 - 1, x0))
                    with pytest.raises(ValueError, match="does not cover"):
                        sample_clicks(regions[sel], cfg, np.random.default_rng(seed), **short)
                if ignore is None:  # "nothing ignored" said either way samples alike
                    kw["ignore"] = np.zeros(regions.shape[1:], bool)
                    again = sample_clicks(regions[sel], cfg, np.random.default_rng(seed), **kw)
                    assert np.array_equal(got, again), (name, ci, seed, given)
                _check_sets(got, cfg, regions[sel], other, ignore, inside[sel])


def _check_sets(arr, cfg, regions, other, ignore, inside):
    n = cfg.max_num_points
    assert arr.shape == (2 * n, 3) and arr.dtype == np.int32
    union = regions.any(axis=0)
    pos, neg = arr[:n], arr[n:]
    assert (pos[:, 0] >= 0).sum() >= 1 or not union.any()
    for y, x, _ in pos[pos[:, 0] >= 0]:
        assert union[y, x]
        assert ignore is None or not ignore[y, x]
    for y, x, _ in neg[neg[:, 0] >= 0]:  # every strategy's set lies off the region
        assert not union[y, x] and (ignore is None or not ignore[y, x])
    # Orders are 0..P+Q-1, positives first; padding is -1 everywhere.
    valid = arr[arr[:, 0] >= 0]
    assert sorted(valid[:, 2].tolist()) == list(range(len(valid)))
    assert (arr[arr[:, 0] < 0] == -1).all()
    if cfg.first_click_center and len(regions) == 1 and pos[0, 0] >= 0:
        assert inside[0][pos[0, 0], pos[0, 1]] > inside[0].max() / cfg.sfc_inner_k


@pytest.mark.realdata
def test_sampler_equals_argwhere_reference_davis(davis_dir):
    for i, (name, regions, ignore) in enumerate(_davis_instances(davis_dir, 10)):
        _compare(name, regions, ignore, seeds=range(3 * i, 3 * i + 3), without_dt=i % 2 == 0)


@pytest.mark.realdata
def test_sampler_equals_argwhere_reference_grabcut_ignore(grabcut_dir):
    for i, p in enumerate(sorted((grabcut_dir / "boundary_GT").glob("*.bmp"))[::5]):
        a = np.array(Image.open(p))
        _compare(p.name, (a == 255)[None], a == 128, seeds=[i], without_dt=i % 2 == 0)


@pytest.mark.realdata
def test_stored_levels_sample_as_their_float_maps_davis(davis_dir):
    from iis_pipe.records import distances
    from iis_pipe.geometry.box import mask_bbox

    coding = distances.DistanceCoding()
    for i, (name, regions, ignore) in enumerate(_davis_instances(davis_dir, 8)):
        if ignore is None and i % 2:  # every other frame: ignore every 7th row
            ignore = np.zeros(regions.shape[1:], bool)
            ignore[::7] = True
        # stored maps as the stream reads them: quantised, rescaled by a resize factor
        q = np.stack([distances.unpack_region(*distances.encode_region(r, mask_bbox(r), coding),
                                              r.shape, coding.clip) for r in regions])
        for ci, (cfg, merge_prob, max_merged) in enumerate(CONFIGS):
            seed = 10 * i + ci
            scale = np.float32((1.0, 1.3, 0.7)[ci])
            sel = choose_regions(np.random.default_rng(seed), regions.sum(axis=(1, 2)),
                                 0.5 if ci == 0 else merge_prob, max_merged)
            rest = np.delete(regions, sel, axis=0)
            kw = dict(other=rest.any(axis=0) if len(rest) else None, ignore=ignore)
            maps = [distances.inside_outside(q[j], regions[j], coding, scale) for j in sel]
            inside, outside = np.stack([m[0] for m in maps]), np.stack([m[1] for m in maps])
            want = sample_clicks(regions[sel], cfg, np.random.default_rng(seed), inside=inside,
                                 outside=outside, **kw)
            if scale >= 1:  # maps no shorter than the pixels' distances: the band's box holds
                # the whole band, and the argwhere statement agrees
                ref = sample_clicks_reference(regions[sel], cfg, np.random.default_rng(seed),
                                              inside=inside, outside=outside, **kw)
                assert np.array_equal(want, ref), (name, ci, seed)
            got = sample_clicks(regions[sel], cfg, np.random.default_rng(seed), levels=q[sel],
                                scale=scale, **kw)
            assert np.array_equal(got, want), (name, ci, seed)
            y0, y1, x0, x1 = distance_window(regions[sel], cfg)
            win = sample_clicks(regions[sel], cfg, np.random.default_rng(seed),
                                levels=q[sel][:, y0:y1, x0:x1], scale=scale, origin=(y0, x0), **kw)
            assert np.array_equal(win, want), (name, ci, seed, "window")
            asked = []
            lazy = sample_clicks(regions[sel], cfg, np.random.default_rng(seed), levels=lambda box: (
                asked.append(box) or (q[sel][:, box[0]:box[1], box[2]:box[3]], scale, None)), **kw)
            assert np.array_equal(lazy, want) and asked == [(y0, y1, x0, x1)], (name, ci, seed)
    empty = np.zeros((1, *regions.shape[1:]), bool)
    none = sample_clicks(empty, cfg, np.random.default_rng(0), levels=lambda box: 1 / 0)
    assert (none[:cfg.max_num_points, 0] < 0).all()  # no positive click, no map asked for
    with pytest.raises(ValueError, match="not both"):
        sample_clicks(regions[:1], cfg, np.random.default_rng(0), levels=q[:1], inside=inside[:1])
    with pytest.raises(ValueError, match="does not cover"):
        sample_clicks(regions[:1], cfg, np.random.default_rng(0), levels=q[:1, :5], scale=1.0)


def _reach_cases(davis_dir, grabcut_dir):
    """``(name, (M, H, W) bool targets, other)``: DAVIS instances alone and in pairs (a small
    one next to a large one's band among them), GrabCut objects."""
    for name, regions, _ in _davis_instances(davis_dir, 12):
        for j in range(len(regions)):
            yield name, regions[j:j + 1], None
        if len(regions) > 1:
            yield name + " merged", regions[:2], None
    for p in sorted((grabcut_dir / "boundary_GT").glob("*.bmp"))[::4]:
        yield p.name, (np.array(Image.open(p)) == 255)[None], None


@pytest.mark.realdata
def test_reach_limited_levels_give_the_clicks_of_full_levels(davis_dir, grabcut_dir):
    """Schema 5 keeps outside levels to each region's reach only: at the widest expand_ratio
    the reach serves (and resize factors from 0.75 to 1.4), the clicks equal those of the
    maps kept to the clip wherever ``levels_hold_band`` says the band is decided by exact
    levels; elsewhere (merged regions where a small one meets a large one's band) the band is
    computed from the masks, and the clicks equal those of the inside levels with no outside
    map (the sampler's own computation)."""
    from iis_pipe.clicking.samplers import _band_window, _union, levels_hold_band
    from iis_pipe.geometry.box import mask_bbox
    from iis_pipe.records import distances

    coding, expand = distances.DistanceCoding(), 0.25
    held = computed = 0
    for k, (name, regions, other) in enumerate(_reach_cases(davis_dir, grabcut_dir)):
        areas = regions.sum(axis=(1, 2))
        reach = [distances.reach(int(a), expand, coding) for a in areas]
        full = np.stack([distances.unpack_region(*distances.encode_region(r, mask_bbox(r), coding),
                                                 r.shape, coding.clip) for r in regions])
        kept = np.stack([distances.unpack_region(*distances.encode_region(
            r, mask_bbox(r), coding, n), r.shape, coding.clip) for r, n in zip(regions, reach)])
        for q_kept, q_full, m, n in zip(kept, full, regions, reach):
            exact = m | (q_full <= n)  # the region and the outside levels up to its reach
            assert np.array_equal(q_kept[exact], q_full[exact]) and (q_kept[~exact] > n).all()
        for scale in (np.float32(0.75), np.float32(1.0), np.float32(1.4)):
            for cfg in (SamplerConfig(expand_ratio=expand, negative_border_prob=0.8,
                                      negative_bg_prob=0.1, negative_other_prob=0.1),
                        SamplerConfig(expand_ratio=0.1)):
                seed = 7 * k + int(10 * scale)
                # the band radius the sampler will use, in pixels of these masks
                union = _union(regions, [mask_bbox(r) for r in regions])
                r = _band_window(union[3], union[4], cfg.expand_ratio, regions.shape[1:])[1]
                got = sample_clicks(regions, cfg, np.random.default_rng(seed), levels=kept,
                                    scale=scale, reach=min(reach))
                if levels_hold_band(min(reach), scale, r):
                    want = sample_clicks(regions, cfg, np.random.default_rng(seed), levels=full,
                                         scale=scale)
                    held += 1
                else:
                    inside = np.stack([distances.inside_outside(q, m, coding, scale)[0]
                                       for q, m in zip(kept, regions)])
                    want = sample_clicks(regions, cfg, np.random.default_rng(seed),
                                         inside=inside)
                    computed += 1
                assert np.array_equal(got, want), (name, scale, cfg.expand_ratio)
    # single regions at scale 1 and over always hold; some merged ones at 0.25 do not
    assert held > 50 and computed > 0


def test_sampler_synthetic_edge_cases():
    h, w = 40, 50
    tiny = np.zeros((h, w), bool)
    tiny[0, 0] = True                                   # one pixel in a corner
    edge = np.zeros((h, w), bool)
    edge[:, 30:] = True                                 # touches three borders
    full = np.ones((h, w), bool)                        # no background at all
    empty = np.zeros((h, w), bool)
    for name, regions in [("tiny", tiny[None]), ("edge", edge[None]), ("full", full[None]),
                          ("empty", empty[None]), ("two", np.stack([tiny, edge]))]:
        for seed in range(4):
            for cfg, _, _ in CONFIGS:
                got = sample_clicks(regions, cfg, np.random.default_rng(seed))
                ref = sample_clicks_reference(regions, cfg, np.random.default_rng(seed))
                assert np.array_equal(got, ref), (name, seed)
    # An empty region gives no positive click; a full one no negative.
    assert (sample_clicks(empty, SamplerConfig(), np.random.default_rng(0))[:24, 0] < 0).all()
    assert (sample_clicks(full, SamplerConfig(), np.random.default_rng(0))[24:, 0] < 0).all()


def test_positive_erosion_and_border_band():
    h, w = 80, 80
    region = np.zeros((h, w), bool)
    region[20:60, 20:60] = True
    inside = distance_to_zero(region, pad_border=True)
    outside = distance_to_zero(~region)
    only_border = SamplerConfig(positive_erode_prob=1.0, negative_bg_prob=0.0,
                                negative_other_prob=0.0, negative_border_prob=1.0)
    r = np.ceil(0.1 * 40)
    for seed in range(30):
        arr = sample_clicks(region, only_border, np.random.default_rng(seed))
        for y, x, _ in arr[:24][arr[:24, 0] >= 0]:
            assert inside[y, x] > 3
        for y, x, _ in arr[24:][arr[24:, 0] >= 0]:
            assert 0 < outside[y, x] <= r


def test_other_strategy_uses_other_objects():
    h, w = 60, 60
    region = np.zeros((h, w), bool)
    region[5:20, 5:20] = True
    other = np.zeros((h, w), bool)
    other[40:50, 40:55] = True
    only_other = SamplerConfig(negative_bg_prob=0.0, negative_other_prob=1.0, negative_border_prob=0.0)
    seen = 0
    for seed in range(20):
        arr = sample_clicks(region, only_other, np.random.default_rng(seed), other=other)
        for y, x, _ in arr[24:][arr[24:, 0] >= 0]:
            assert other[y, x]
            seen += 1
    assert seen > 0


def test_count_distribution_follows_gamma():
    region = np.zeros((30, 30), bool)
    region[5:25, 5:25] = True
    cfg = SamplerConfig(max_num_points=5, prob_gamma=0.5, positive_erode_prob=0.0)
    rng = np.random.default_rng(0)
    pos = np.zeros(5)
    for _ in range(4000):
        arr = sample_clicks(region, cfg, rng)
        pos[(arr[:5, 0] >= 0).sum() - 1] += 1
    assert np.allclose(pos / pos.sum(), _gamma_probs(5, 0.5), atol=0.03)


def test_choose_regions_and_config_checks():
    rng = np.random.default_rng(0)
    areas = np.array([10, 20, 30, 40, 50])
    sizes = {len(choose_regions(rng, areas, 1.0, 3)) for _ in range(200)}
    assert sizes == {2, 3}
    sel = choose_regions(rng, areas, 1.0, 3)
    assert len(set(sel)) == len(sel)
    assert len(choose_regions(rng, areas[:1], 1.0, 3)) == 1
    assert len(choose_regions(rng, areas[:4])) == 1
    assert choose_regions(rng, areas, 0.0, 2, min_area=45) == [4]
    assert choose_regions(rng, areas, 0.0, 2, min_area=60) == []
    with pytest.raises(ValueError):
        SamplerConfig(negative_bg_prob=0.5)
    with pytest.raises(ValueError):
        sample_clicks(np.zeros((4, 4), bool), SamplerConfig(), rng, ignore=np.zeros((4, 5), bool))


def test_sample_round_trips_through_lists():
    region = np.zeros((30, 40), bool)
    region[10:20, 10:30] = True
    arr = sample_clicks(region, SamplerConfig(), np.random.default_rng(3))
    clicks = array_to_clicks(arr)
    assert clicks[0].positive and len(clicks) == (arr[:, 0] >= 0).sum()
