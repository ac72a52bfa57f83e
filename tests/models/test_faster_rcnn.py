"""FasterRCNN end to end: the tiny model learns two images, and predicts in original pixels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from model_helpers import boxes, meta, shapes_image, tiny_cfg

from detcli.errors import ModelError
from detcli.models import FasterRCNN, build_model
from detcli.models.run_cfgs import RCNNTestCfg, read_cfg
from detcli.models.task_modules import bbox_overlaps
from detcli.structures import Detections

BOXES = [[(8, 10, 60, 70), (70, 20, 120, 100)], [(30, 30, 90, 90)]]
LABELS = [[0, 2], [1]]


def two_images():
    img = torch.stack(
        [shapes_image(b, lab, seed=i) for i, (b, lab) in enumerate(zip(BOXES, LABELS, strict=True))]
    )
    gt = [boxes([list(b) for b in bb]) for bb in BOXES]
    labels = [torch.tensor(lab) for lab in LABELS]
    return img, [meta(), meta()], gt, labels


@pytest.fixture(scope="module")
def trained() -> tuple[FasterRCNN, list[float]]:
    """The tiny model after overfitting the two images (80 steps, about 20 s on 2 CPU cores)."""
    torch.manual_seed(0)
    model = build_model(tiny_cfg())
    img, metas, gt, labels = two_images()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0, foreach=True)
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, [60], 0.1)
    model.train()
    history = []
    for _ in range(80):
        losses = model(img, metas, gt, labels)
        total = sum(v for k, v in losses.items() if k.startswith("loss"))
        opt.zero_grad()
        total.backward()
        opt.step()
        schedule.step()
        history.append(float(total.detach()))
    return model.eval(), history


def matched(expected: torch.Tensor, det: Detections) -> torch.Tensor:
    """For each expected box, the IoU of the detection overlapping it most."""
    return bbox_overlaps(expected, det.boxes).amax(1)


def test_training_returns_mmdet_named_losses():
    torch.manual_seed(0)
    model = build_model(tiny_cfg())
    img, metas, gt, labels = two_images()
    losses = model(img, metas, gt, labels)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "acc"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert 0 <= float(losses["acc"]) <= 100
    assert isinstance(model, FasterRCNN) and model.num_classes == 3


def test_tiny_model_overfits_two_images(trained):
    model, history = trained
    assert history[0] > 1.5
    assert sum(history[-5:]) / 5 < 0.1 * history[0]  # near zero next to where it started
    img, metas, gt, labels = two_images()
    with torch.no_grad():
        dets = model(img, metas, return_loss=False)
    for det, gt_boxes, gt_labels in zip(dets, gt, labels, strict=True):
        best = bbox_overlaps(gt_boxes, det.boxes).argmax(1)
        assert (matched(gt_boxes, det) > 0.5).all()
        assert det.labels[best].tolist() == gt_labels.tolist()
        assert (det.scores[best] > 0.5).all()


def test_boxes_map_back_to_the_original_image(trained):
    """The network sees a 128 px input; the image was 256 px, and the second view was flipped."""
    model, _ = trained
    img, _, gt, _ = two_images()
    metas = [meta(size=128, ori=256), meta(size=128, ori=256, flip="horizontal")]
    with torch.no_grad():
        dets = model.simple_test(img, metas, rescale=True)
        raw = model.simple_test(img, metas, rescale=False)
        vertical = model.simple_test(img[1:], [meta(size=128, ori=192, flip="vertical")])[0]
    # exact arithmetic: scale by 2, and mirror the flipped view's x across the 128 px input
    assert torch.allclose(dets[0].boxes, raw[0].boxes * 2, atol=1e-3)
    mirrored = raw[1].boxes[:, [2, 1, 0, 3]] * torch.tensor([-1.0, 1.0, -1.0, 1.0]) + torch.tensor(
        [128.0, 0, 128.0, 0]
    )
    assert torch.allclose(dets[1].boxes, mirrored * 2, atol=1e-3)
    upside = raw[1].boxes[:, [0, 3, 2, 1]] * torch.tensor([1.0, -1.0, 1.0, -1.0]) + torch.tensor(
        [0, 128.0, 0, 128.0]
    )
    assert torch.allclose(vertical.boxes, upside * 1.5, atol=1e-3)
    # and the objects land where they are in the original image
    flipped = gt[1].clone()
    flipped[:, [0, 2]] = 128 - gt[1][:, [2, 0]]
    assert (matched(gt[0] * 2, dets[0]) > 0.5).all() and (matched(flipped * 2, dets[1]) > 0.5).all()
    assert all((d.boxes >= 0).all() and (d.boxes <= 256).all() for d in dets)
    assert all(isinstance(d, Detections) and d.boxes.dtype == torch.float32 for d in dets)


def test_test_time_augmentation_merges_flipped_and_rescaled_views(trained):
    model, _ = trained
    img, metas, gt, labels = two_images()
    views = [
        img,
        img.flip(-1),
        F.interpolate(img, size=(96, 96), mode="bilinear", align_corners=False),
    ]
    view_metas = [metas, [meta(flip="horizontal")] * 2, [meta(size=96, ori=128)] * 2]
    with torch.no_grad():
        dets = model(views, view_metas, return_loss=False)
    for det, gt_boxes, gt_labels in zip(dets, gt, labels, strict=True):
        best = bbox_overlaps(gt_boxes, det.boxes).argmax(1)
        assert (matched(gt_boxes, det) > 0.5).all()  # in original pixels, flip undone
        assert det.labels[best].tolist() == gt_labels.tolist()
        # Scores are averaged over the views; only the first was trained on (score > 0.5
        # there), so the merged score keeps at least its share. The flipped and 96 px views
        # alone vary with the training run's random draws.
        assert (det.scores[best] > 0.5 / len(views)).all()


def test_boxes_are_clipped_to_the_original_image():
    model = build_model(tiny_cfg()).eval()
    img, _, _, _ = two_images()
    with torch.no_grad():
        (det,) = model.simple_test(
            img[:1], [{**meta(size=128, ori=100), "scale_factor": [1.0] * 4}]
        )
    assert len(det) and (det.boxes[:, 2:] <= 100).all() and (det.boxes >= 0).all()


def test_score_thr_max_per_img_and_nms_bound_the_detections(trained):
    model, _ = trained
    img, metas, _, _ = two_images()
    head = model.roi_head
    with torch.no_grad():
        feats = model.extract_feat(img)
        hw = torch.tensor([[128.0, 128.0], [128.0, 128.0]])
        props = model.rpn_head.proposals(*model.rpn_head(feats), hw)

        def predict(**kw):
            return head.predict(feats, props, hw, metas, cfg=read_cfg(RCNNTestCfg, kw, "rcnn"))

        loose = predict(score_thr=0.0)
        sure = predict(score_thr=0.5)
        one = predict(score_thr=0.0, max_per_img=1)
        merged = predict(score_thr=0.0, max_per_img=5000, nms={"iou_threshold": 0.1})
        kept = predict(score_thr=0.0, max_per_img=5000, nms={"iou_threshold": 0.9})
    assert all(len(s) < len(lo) for s, lo in zip(sure, loose, strict=True))
    assert all((d.scores > 0.5).all() for d in sure)
    assert [len(d) for d in one] == [1, 1] and one[1].scores[0] == loose[1].scores.max()
    assert all(len(d) <= 100 for d in loose)
    assert all(len(m) < len(k) for m, k in zip(merged, kept, strict=True))


def test_crowd_regions_and_images_without_objects_train():
    cfg = tiny_cfg()
    cfg["train_cfg"]["rpn"]["assigner"]["ignore_iof_thr"] = 0.5
    cfg["train_cfg"]["rcnn"]["assigner"]["ignore_iof_thr"] = 0.5
    model = build_model(cfg)
    img, metas, gt, labels = two_images()
    gt[1] = boxes([])
    labels[1] = torch.zeros(0, dtype=torch.long)
    ignore = [boxes([[0, 100, 40, 128]]), boxes([[10, 10, 50, 50]])]
    losses = model(img, metas, gt, labels, gt_bboxes_ignore=ignore)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(v for k, v in losses.items() if k.startswith("loss")).backward()


def test_inference_only_models_and_tta_limits():
    cfg = tiny_cfg()
    del cfg["train_cfg"]
    model = build_model(cfg).eval()
    img, metas, gt, labels = two_images()
    with pytest.raises(ModelError, match=r"train_cfg\.rpn"):
        model.train()(img, metas, gt, labels)
    model.eval()
    with torch.no_grad():
        assert len(model([img], [metas], return_loss=False)) == 2  # one view: plain inference
        assert len(model([img, img], [metas, metas], return_loss=False)) == 2
        with pytest.raises(ModelError, match="original image pixels"):
            model([img, img], [metas, metas], return_loss=False, rescale=False)
    with pytest.raises(ModelError, match="unknown sections"):
        build_model({**tiny_cfg(), "test_cfg": {"rpn": {}, "rcnn": {}, "rcnnn": {}}})
