"""Mask R-CNN, model side: the FCN mask head, its targets, its loss, masks pasted back into the
original image through resize and flip, and the mask configs."""

from __future__ import annotations

import copy

import pytest
import torch
from model_helpers import REPO, boxes, meta, shapes_image

from detcli.config import load_config, resolve_config
from detcli.config.check import check_config
from detcli.data.masks import BitmapMasks, PolygonMasks
from detcli.errors import ModelError
from detcli.model_config import build_model
from detcli.models import CrossEntropyLoss, FCNMaskHead, MaskRCNN
from detcli.models.detectors.tta import merged_masks
from detcli.models.roi_heads.mask_branch import predict_masks
from detcli.models.roi_heads.mask_paste import paste_masks
from detcli.plugins import load_plugins
from detcli.structures import Detections

SHAPES_MASK = REPO / "configs" / "shapes" / "mask_rcnn_r18_fpn_shapes.yaml"
TV_MASK = REPO / "configs" / "mask_rcnn" / "mask_rcnn_r50_fpn_torchvision_coco.yaml"
SHAPES_CASCADE_MASK = REPO / "configs" / "shapes" / "cascade_mask_rcnn_r18_fpn_shapes.yaml"
MASK_CONFIGS = [
    REPO / "configs" / "mask_rcnn" / "mask_rcnn_r50_fpn_1x_coco.yaml",
    TV_MASK,
    REPO / "configs" / "mmdet3" / "mask_rcnn" / "mask-rcnn_r50_fpn_1x_coco.yaml",
    REPO / "configs" / "hrnet" / "mask_rcnn_hrnetv2p_w32_1x_coco.yaml",
    SHAPES_MASK,
]
CASCADE_MASK_CONFIGS = [
    REPO / "configs" / "cascade_rcnn" / "cascade_mask_rcnn_r50_fpn_1x_coco.yaml",
    REPO / "configs" / "cascade_rcnn" / "cascade_mask_rcnn_r50_fpn_20e_coco.yaml",
    REPO / "configs" / "mmdet3" / "cascade_rcnn" / "cascade-mask-rcnn_r50_fpn_1x_coco.yaml",
    REPO / "configs" / "mmdet3" / "cascade_rcnn" / "cascade-mask-rcnn_r50_fpn_20e_coco.yaml",
    SHAPES_CASCADE_MASK,
]


def rectangles(size: int, rects: list[tuple[int, int, int, int]]) -> BitmapMasks:
    """Bitmap masks of filled rectangles `x1, y1, x2, y2` (exclusive ends), size x size px."""
    masks = torch.zeros(len(rects), size, size, dtype=torch.uint8)
    for i, (x1, y1, x2, y2) in enumerate(rects):
        masks[i, y1:y2, x1:x2] = 1
    return BitmapMasks(masks, size, size)


@pytest.fixture(scope="module", autouse=True)
def _registered():
    load_plugins()


def mask_cfg(**roi_changes):
    cfg = copy.deepcopy(load_config(SHAPES_MASK).model.to_dict())
    for key, value in roi_changes.items():
        cfg["roi_head"][key].update(value)
    return cfg


def test_fcn_mask_head_has_mmdet_parameter_names_and_shapes():
    head = FCNMaskHead(num_classes=3, in_channels=8, roi_feat_size=14, conv_out_channels=16)
    names = {k for k in head.state_dict() if k.endswith("weight")}
    assert names == {
        "convs.0.conv.weight",
        "convs.1.conv.weight",
        "convs.2.conv.weight",
        "convs.3.conv.weight",
        "upsample.weight",
        "conv_logits.weight",
    }
    assert head(torch.randn(5, 8, 14, 14)).shape == (5, 3, 28, 28)
    agnostic = FCNMaskHead(num_classes=3, in_channels=8, roi_feat_size=14, class_agnostic=True)
    assert agnostic(torch.randn(2, 8, 14, 14)).shape == (2, 1, 28, 28)
    bilinear = FCNMaskHead(
        num_classes=3, in_channels=8, roi_feat_size=7, num_convs=0,
        upsample_cfg={"type": "bilinear", "scale_factor": 4},
    )  # fmt: skip
    assert bilinear(torch.randn(2, 8, 7, 7)).shape == (2, 3, 28, 28) and bilinear.output_size == 28
    with pytest.raises(ModelError, match="use_mask: true"):
        FCNMaskHead(num_classes=3, loss_mask=CrossEntropyLoss())
    with pytest.raises(ModelError, match="carafe"):
        FCNMaskHead(num_classes=3, upsample_cfg={"type": "carafe", "scale_factor": 2})


def test_the_mask_head_is_wired_from_its_extractor():
    model = build_model(mask_cfg())
    head = model.roi_head.mask_head
    assert (head.in_channels, head.roi_feat_size, head.output_size) == (64, 14, 28)
    assert model.roi_head.mask_roi_extractor.featmap_strides == [4, 8, 16, 32]


def test_mask_targets_are_the_matched_instance_cut_to_the_roi_exactly():
    """Proposals equal to the GT boxes: every positive RoI is a GT box, and its target is that
    instance's mask cut to it, whichever image and instance it is."""
    model = build_model(mask_cfg()).train()
    # Instance 0's mask fills the left half of its box only: a wrong instance would show.
    gt = [boxes([[8, 8, 40, 40], [60, 60, 120, 100]]), boxes([[20, 30, 76, 58]])]
    labels = [torch.tensor([0, 2]), torch.tensor([1])]
    masks = [
        rectangles(128, [(8, 8, 24, 40), (60, 60, 120, 100)]),
        rectangles(128, [(20, 30, 76, 58)]),
    ]
    seen = {}
    loss = model.roi_head.mask_head.loss

    def spy(mask_pred, targets, labels):
        seen.update(pred=mask_pred, targets=targets, labels=labels)
        return loss(mask_pred, targets, labels)

    model.roi_head.mask_head.loss = spy
    feats = model.extract_feat(torch.randn(2, 3, 128, 128))
    losses = model.roi_head.loss(feats, [b.clone() for b in gt], gt, labels, gt_masks=masks)
    assert losses["loss_mask"] > 0
    targets, got_labels = seen["targets"], seen["labels"]
    # add_gt_as_proposals plus the same boxes as proposals: 2 + 2 positives, then 1 + 1.
    assert targets.shape == (6, 28, 28) and seen["pred"].shape == (6, 3, 28, 28)
    left_half = torch.zeros(28, 28)
    left_half[:, :14] = 1
    expected = {0: left_half, 2: torch.ones(28, 28), 1: torch.ones(28, 28)}
    for target, label in zip(targets, got_labels.tolist(), strict=True):
        assert torch.equal(target, expected[label])


def polygon_rectangles(size: int, rects: list[tuple[int, int, int, int]]) -> PolygonMasks:
    """The same rectangles as polygons (corners on pixel edges)."""
    polys = [[[x1, y1, x2, y1, x2, y2, x1, y2]] for x1, y1, x2, y2 in rects]
    return PolygonMasks.from_polygons(polys, size, size)


@pytest.mark.parametrize("kind", [rectangles, polygon_rectangles], ids=["bitmap", "polygon"])
def test_mask_targets_of_a_larger_roi_are_exact(kind):
    """A 32 px square mask under a RoI twice its height: the top half of the target is ones."""
    head = FCNMaskHead(num_classes=1, in_channels=4, roi_feat_size=14)
    square = kind(64, [(16, 16, 48, 48)])
    rois = boxes([[16, 16, 48, 48], [16, 16, 48, 80], [0, 0, 64, 64]])
    targets = head.get_targets([rois], [torch.zeros(3, dtype=torch.long)], [square], (28, 28))
    top = torch.zeros(28, 28)
    top[:14] = 1
    middle = torch.zeros(28, 28)
    middle[7:21, 7:21] = 1  # 16..48 of 64 px is cells 7..21 of 28
    assert torch.equal(targets[0], torch.ones(28, 28))
    assert torch.equal(targets[1], top)
    assert torch.equal(targets[2], middle)


def test_loss_mask_is_mean_bce_on_the_gt_class_channel():
    head = FCNMaskHead(num_classes=3, in_channels=4, roi_feat_size=14)
    pred = torch.randn(2, 3, 28, 28)
    targets = (torch.rand(2, 28, 28) > 0.5).float()
    labels = torch.tensor([2, 0])
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.stack([pred[0, 2], pred[1, 0]]), targets
    )
    torch.testing.assert_close(head.loss(pred, targets, labels)["loss_mask"], want)
    empty = head.loss(pred[:0].requires_grad_(), targets[:0], labels[:0])["loss_mask"]
    assert empty == 0 and empty.requires_grad


def test_tiny_mask_rcnn_trains_its_mask_head():
    torch.manual_seed(0)
    model = build_model(mask_cfg()).train()
    assert isinstance(model, MaskRCNN) and model.with_mask
    rects = [[(10, 10, 60, 60), (70, 20, 120, 90)], [(30, 40, 100, 120)]]
    labels = [torch.tensor([0, 1]), torch.tensor([2])]
    img = torch.stack(
        [
            shapes_image(r, lab.tolist(), seed=i)
            for i, (r, lab) in enumerate(zip(rects, labels, strict=True))
        ]
    )
    gt = [boxes([list(r) for r in rs]) for rs in rects]
    masks = [rectangles(128, rs) for rs in rects]
    metas = [meta(), meta()]
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    first = None
    for _ in range(8):
        losses = model(img, metas, gt, labels, gt_masks=masks)
        total = sum(v for k, v in losses.items() if k.startswith("loss"))
        opt.zero_grad()
        total.backward()
        if first is None:
            first = float(losses["loss_mask"].detach())
            grad = model.roi_head.mask_head.conv_logits.weight.grad
            assert grad is not None and grad.abs().sum() > 0
            assert model.roi_head.mask_head.convs[0].conv.weight.grad.abs().sum() > 0
        opt.step()
    assert float(losses["loss_mask"].detach()) < first
    with pytest.raises(ModelError, match="gt_masks"):
        model(img, metas, gt, labels)
    model.eval()
    with torch.no_grad():
        dets = model(img, [meta(ori=256), meta(ori=64)], return_loss=False)
    assert sum(len(d) for d in dets) > 0
    for det, side in zip(dets, (256, 64), strict=True):
        assert det.masks is not None and det.masks.dtype == torch.bool
        assert det.masks.shape == (len(det), side, side)


def model_with_fixed_masks(logits: torch.Tensor):
    """The tiny Mask R-CNN whose mask head predicts `logits` (s, s) for every RoI and class."""
    model = build_model(mask_cfg()).eval()
    head = model.roi_head.mask_head
    head.forward = lambda x: logits.expand(x.shape[0], head.num_classes, *logits.shape)
    return model


@pytest.mark.parametrize("flip", [None, "horizontal", "vertical", "diagonal"])
def test_masks_paste_back_through_resize_and_flip_exactly(flip):
    """A box in original pixels of a 100 x 200 image that the network saw resized by 0.64 and
    maybe flipped: a mask predicted all-ones covers exactly the box, and one predicted for the
    right half (in the flipped view) lands on the half the flip maps it to."""
    ori_h, ori_w, scale = 100, 200, 0.64
    metas = [
        {
            "img_shape": (64, 128, 3),
            "pad_shape": (64, 128, 3),
            "ori_shape": (ori_h, ori_w, 3),
            "scale_factor": [scale] * 4,
            "flip": flip is not None,
            "flip_direction": flip,
        }
    ]
    box = boxes([[10, 20, 50, 40]])
    det = Detections(box.clone(), torch.tensor([0.9]), torch.tensor([1]))
    model = model_with_fixed_masks(torch.full((28, 28), 20.0))
    feats = model.extract_feat(torch.zeros(1, 3, 64, 128))
    head = model.roi_head
    predict_masks([(head.mask_roi_extractor, head.mask_head)], feats, [det], metas, True, 0.5)
    want = torch.zeros(1, ori_h, ori_w, dtype=torch.bool)
    want[0, 20:40, 10:50] = True
    assert torch.equal(det.masks, want)

    right = torch.full((28, 28), -20.0)
    right[:, 14:] = 20.0
    model = model_with_fixed_masks(right)
    det = Detections(box.clone(), torch.tensor([0.9]), torch.tensor([1]))
    head = model.roi_head
    predict_masks([(head.mask_roi_extractor, head.mask_head)], feats, [det], metas, True, 0.5)
    want = torch.zeros(1, ori_h, ori_w, dtype=torch.bool)
    if flip in ("horizontal", "diagonal"):
        want[0, 20:40, 10:30] = True  # the view's right half is the original's left half
    else:
        want[0, 20:40, 30:50] = True
    assert torch.equal(det.masks, want)


def test_paste_matches_grid_sample_and_chunks_agree():
    """The separable paste is mmdet's grid_sample paste (`_do_paste_mask`), in any chunking."""
    torch.manual_seed(0)
    probs = torch.rand(7, 28, 28)
    bxs = torch.tensor([[3.2, 4.7, 40.1, 30.3], [0, 0, 60, 50], [-5, 10, 20, 70], [50, 40, 58, 44]]
                       + [[10.5, 10.5, 30.5, 20.5]] * 3)  # fmt: skip
    h, w = 50, 60
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    x0, y0, x1, y1 = bxs.split(1, dim=1)
    gx = ((xs - x0) / (x1 - x0) * 2 - 1)[:, None, :].expand(-1, h, -1)
    gy = ((ys - y0) / (y1 - y0) * 2 - 1)[:, :, None].expand(-1, -1, w)
    ref = torch.nn.functional.grid_sample(
        probs[:, None], torch.stack([gx, gy], 3), align_corners=False
    )[:, 0]
    for threshold in (0.3, 0.5):
        pasted = paste_masks(probs, bxs, h, w, threshold)
        near_edge = (ref - threshold).abs() < 1e-5
        assert torch.equal(pasted[~near_edge], (ref >= threshold)[~near_edge])
        assert torch.equal(paste_masks(probs, bxs, h, w, threshold, chunk_elements=1), pasted)
    assert paste_masks(probs[:0], bxs[:0], h, w).shape == (0, h, w)


def test_mask_head_classes_must_match_the_box_head(write):
    with pytest.raises(
        ModelError, match=r"mask_head\.num_classes is 5 but .*bbox_head\.num_classes is 3"
    ):
        build_model(mask_cfg(mask_head={"num_classes": 5}))
    build_model(mask_cfg(mask_head={"num_classes": 5, "class_agnostic": True}))  # one map: fine
    path = write(
        "m.yaml",
        f"_base_: {SHAPES_MASK}\nmodel:\n  roi_head:\n    mask_head:\n      num_classes: 80\n",
    )
    found = {p.where: p.message for p in check_config(resolve_config(path))}
    assert "mask_head.num_classes is 80" in found["model"]


def test_mask_rcnn_without_a_mask_head_and_mismatched_mask_size_are_errors(write):
    cfg = mask_cfg()
    del cfg["roi_head"]["mask_head"], cfg["roi_head"]["mask_roi_extractor"]
    with pytest.raises(ModelError, match=r"MaskRCNN needs model\.roi_head\.mask_roi_extractor"):
        build_model(cfg)
    path = write(
        "s.yaml", f"_base_: {SHAPES_MASK}\nmodel:\n  train_cfg:\n    rcnn:\n      mask_size: 14\n"
    )
    found = {p.where: p.message for p in check_config(resolve_config(path))}
    assert "mask_size is 14; set mask_size: 28" in found["model.roi_head.mask_head"]
    with pytest.raises(ModelError, match="mask_thr_binary"):
        build_model({**mask_cfg(), "test_cfg": {"rcnn": {"mask_thr_binary": 2}}})
    with pytest.raises(ModelError, match="mask_paste is 'nearest'; use one of bilinear, torch"):
        build_model({**mask_cfg(), "test_cfg": {"rcnn": {"mask_paste": "nearest"}}})


@pytest.mark.parametrize("path", MASK_CONFIGS + CASCADE_MASK_CONFIGS, ids=lambda p: p.name)
def test_mask_configs_build_on_the_meta_device(path):
    cfg = load_config(path)
    assert cfg.model.type in ("MaskRCNN", "CascadeRCNN")
    model_problems = [
        p for p in check_config(resolve_config(path)) if p.where.startswith("model") and not p.note
    ]
    assert model_problems == []
    with torch.device("meta"):
        model = build_model(cfg.model.to_dict())
    assert model.with_mask and model.roi_head.test_cfg.mask_thr_binary == 0.5


def training_batch():
    rects = [[(10, 10, 60, 60), (70, 20, 120, 90)], [(30, 40, 100, 120)]]
    labels = [torch.tensor([0, 1]), torch.tensor([2])]
    img = torch.stack(
        [
            shapes_image(r, lab.tolist(), seed=i)
            for i, (r, lab) in enumerate(zip(rects, labels, strict=True))
        ]
    )
    gt = [boxes([list(r) for r in rs]) for rs in rects]
    return img, [meta(), meta()], gt, labels, [rectangles(128, rs) for rs in rects]


def test_cascade_mask_rcnn_trains_a_mask_head_per_stage_and_averages_them():
    torch.manual_seed(0)
    model = build_model(load_config(SHAPES_CASCADE_MASK).model.to_dict()).train()
    head = model.roi_head
    assert model.with_mask and len(head.mask_head) == 3
    # One mask_head config, three heads with their own weights (mmdet copies the config).
    w = [h.conv_logits.weight for h in head.mask_head]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])
    img, metas, gt, labels, masks = training_batch()
    losses = model(img, metas, gt, labels, gt_masks=masks)
    assert {f"s{i}.loss_mask" for i in range(3)} <= set(losses)
    sum(v for k, v in losses.items() if "loss" in k).backward()
    assert all(h.conv_logits.weight.grad.abs().sum() > 0 for h in head.mask_head)
    # Test time: the stages' probabilities are averaged. Stage logits +20, -20, +20 average to
    # 2/3 inside the box (more than 0.5 even at its edge pixels): set at 0.5, not at 0.7.
    for h, value in zip(head.mask_head, (20.0, -20.0, 20.0), strict=True):
        h.forward = lambda x, v=value, n=h.num_classes: torch.full((x.shape[0], n, 28, 28), v)
    det = Detections(boxes([[10, 20, 50, 40]]), torch.tensor([0.9]), torch.tensor([1]))
    feats = model.extract_feat(img[:1])
    branches = [head.mask_branch(i) for i in range(3)]
    predict_masks(branches, feats, [det], metas[:1], True, 0.5)
    assert int(det.masks.sum()) == 20 * 40
    predict_masks(branches, feats, [det], metas[:1], True, 0.7)
    assert int(det.masks.sum()) == 0


def test_cascade_mask_heads_must_match_the_stages():
    cfg = load_config(SHAPES_CASCADE_MASK).model.to_dict()
    head = cfg["roi_head"]["mask_head"]
    cfg["roi_head"]["mask_head"] = [head, head]
    with pytest.raises(
        ModelError, match=r"mask_head has 2 entries but model\.roi_head\.num_stages is 3"
    ):
        build_model(cfg)
    cfg["roi_head"]["mask_head"] = [head, head, {**head, "num_classes": 4}]
    with pytest.raises(ModelError, match=r"mask_head\.num_classes is 4"):
        build_model(cfg)


def test_test_time_augmentation_averages_the_views_masks():
    """Two views of one image, one flipped: a head predicting the view's right half gives the
    original's right half in one view and its left half in the other; averaged, 0.5 over the
    whole box."""
    right = torch.full((28, 28), -20.0)
    right[:, 14:] = 20.0
    model = model_with_fixed_masks(right)
    img = torch.zeros(1, 3, 64, 64)
    feats = model.extract_feat(img)
    hw = torch.tensor([[64.0, 64.0]])
    views = [(feats, hw, [meta(64)]), (feats, hw, [meta(64, flip="horizontal")])]
    for threshold, pixels in ((0.4, 20 * 40), (0.6, 0)):
        det = Detections(boxes([[10, 20, 50, 40]]), torch.tensor([0.9]), torch.tensor([1]))
        merged_masks(model.roi_head, views, [det], threshold)
        assert int(det.masks[0, 20:40, 10:50].sum()) == pixels and int(det.masks.sum()) == pixels
    # Identical views: the same masks as one view.
    torch.manual_seed(0)
    model = build_model(mask_cfg()).eval()
    img = torch.stack([shapes_image([(10, 10, 60, 60)], [0])])
    with torch.no_grad():
        single = model(img, [meta()], return_loss=False)
        both = model([img, img], [[meta()], [meta()]], return_loss=False)
    assert torch.equal(single[0].masks, both[0].masks) and single[0].masks.shape[1:] == (128, 128)


def test_torchvision_mask_rcnn_weights_give_torchvision_masks(tmp_path):
    """A seeded random `maskrcnn_resnet50_fpn`, its state dict imported into the torchvision
    Mask R-CNN config: the same boxes, and every instance's mask torchvision's (IoU > 0.99)."""
    from torchvision.io import read_image
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    from detcli.data.synthetic import write_shapes_coco
    from detcli.models.checkpoint_import.torchvision import rename_torchvision

    h, w = 160, 224  # torchvision's min_size is h: no resizing on either side
    torch.manual_seed(0)
    tv = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=h, max_size=2000)
    with torch.no_grad():  # random heads made confident, so there are detections to compare
        tv.roi_heads.box_predictor.cls_score.weight.mul_(300)
        tv.roi_heads.box_predictor.bbox_pred.weight.mul_(30)
        tv.rpn.head.bbox_pred.weight.mul_(30)
        tv.roi_heads.mask_predictor.mask_fcn_logits.weight.mul_(30)
    tv.eval()
    model = build_model(load_config(TV_MASK).model.to_dict()).eval()
    model.load_state_dict(rename_torchvision(tv.state_dict())[0])
    _, img_dir = write_shapes_coco(
        tmp_path, num_images=2, num_classes=3, image_size=(w, h), seed=1, split="val"
    )
    found = 0
    for path in sorted(img_dir.glob("*.png")):
        img = read_image(str(path)).float()
        m = {"img_shape": (h, w, 3), "ori_shape": (h, w, 3), "pad_shape": (h, w, 3)}
        with torch.no_grad():
            ref = tv([img / 255])[0]
            (det,) = model(img[None], [m], return_loss=False)
        torch.testing.assert_close(det.boxes, ref["boxes"], atol=1e-3, rtol=0)
        ref_masks = ref["masks"][:, 0] >= 0.5
        inter = (det.masks & ref_masks).sum((1, 2)).float()
        union = (det.masks | ref_masks).sum((1, 2)).clamp(min=1).float()
        assert ((inter / union) > 0.99).all()
        found += len(det)
    assert found >= 1


def test_a_batch_without_objects_trains_with_a_zero_mask_loss():
    """No GT anywhere: no positive RoI, `loss_mask` a zero that still reaches the mask head
    (every parameter gets a gradient, as distributed training needs)."""
    model = build_model(mask_cfg()).train()
    empty = [boxes([]), boxes([])]
    labels = [torch.zeros(0, dtype=torch.long)] * 2
    masks = [rectangles(128, []), rectangles(128, [])]
    losses = model(torch.randn(2, 3, 128, 128), [meta(), meta()], empty, labels, gt_masks=masks)
    assert losses["loss_mask"] == 0
    sum(v for k, v in losses.items() if k.startswith("loss")).backward()
    assert model.roi_head.mask_head.conv_logits.weight.grad is not None


@pytest.mark.parametrize("path", [SHAPES_MASK, SHAPES_CASCADE_MASK], ids=lambda p: p.stem)
def test_mask_models_train_and_evaluate_bbox_and_segm_from_their_configs(
    shapes_coco, tmp_path, path
):
    import detcli

    overrides = [
        f"data_root={shapes_coco.root}",
        "runner.max_epochs=1",
        "evaluation.interval=100",  # evaluated below, once
        "log_config.hooks=[{type: TextLoggerHook}]",
    ]
    cfg = load_config(path, overrides)
    result = detcli.train(cfg, work_dir=tmp_path / "work", device="cpu", threads=1)
    evaluated = detcli.evaluate(cfg, result.last_checkpoint, split="val", device="cpu")
    assert 0 <= evaluated.metrics["bbox_mAP"] <= 1 and 0 <= evaluated.metrics["segm_mAP"] <= 1
    assert all(d.rles is not None and len(d.rles) == len(d) for d in evaluated.detections)


def test_soft_mask_targets_keep_the_fractions_of_a_boundary():
    """`soft_mask_target`: the resized GT mask as it is; default: thresholded at 0.5."""
    bitmap = torch.zeros(1, 16, 16, dtype=torch.bool)
    bitmap[:, :, :5] = True  # the left 5 columns
    masks = BitmapMasks(bitmap, 16, 16)
    head = FCNMaskHead(num_classes=1, in_channels=8, roi_feat_size=14, conv_out_channels=8)
    roi = [torch.tensor([[0.0, 0.0, 16.0, 16.0]])]
    inds = [torch.tensor([0])]
    hard = head.get_targets(roi, inds, [masks], (4, 4))
    soft = head.get_targets(roi, inds, [masks], (4, 4), binarize=False)
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    assert soft[0, 0, 1] == pytest.approx(0.25)  # the target column over pixels 4-7: 1 of 4 set
    assert hard[0, 0].tolist() == [1.0, 0.0, 0.0, 0.0]
