"""torchvision and MMDetection checkpoints through detcli's public paths (predict, train, CLI).

torchvision's Faster R-CNN is built here with seeded random weights (no download) and run by
torchvision itself; the same state dict, loaded by detcli with the shipped torchvision config,
must give the same detections. Bad files are refused through the real CLI with exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

import detcli
from detcli.config import load_config
from detcli.config.settings import read_run_settings
from detcli.data.synthetic import write_shapes_coco
from detcli.inference.inputs import ImageFiles, predict_pipeline

REPO = Path(__file__).resolve().parents[2]
TV_CONFIG = REPO / "configs" / "faster_rcnn" / "faster_rcnn_r50_fpn_torchvision_coco.yaml"
SHAPES = REPO / "configs" / "shapes" / "faster_rcnn_r18_fpn_shapes.yaml"
W, H = 224, 160  # test images; torchvision's min_size is H, so neither side resizes


def _heads_with_signal(model: torch.nn.Module) -> None:
    """Random heads score every class near 1/91; scaled, they give confident boxes."""
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight.mul_(300)
        model.roi_heads.box_predictor.bbox_pred.weight.mul_(30)
        model.rpn.head.bbox_pred.weight.mul_(30)


@pytest.fixture(scope="module")
def torchvision_run(tmp_path_factory: pytest.TempPathFactory):
    """A seeded random `fasterrcnn_resnet50_fpn` saved as a bare state dict, with its outputs."""
    root = tmp_path_factory.mktemp("tv")
    _, img_dir = write_shapes_coco(
        root, num_images=2, num_classes=3, image_size=(W, H), seed=1, split="val"
    )
    files = sorted(img_dir.glob("*.png"))
    torch.manual_seed(0)
    tv = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=H, max_size=2000)
    _heads_with_signal(tv)
    tv.eval()
    checkpoint = root / "fasterrcnn_resnet50_fpn.pth"
    torch.save(tv.state_dict(), checkpoint)
    cfg = load_config(TV_CONFIG, [f"test_pipeline.1.scale=[2000,{H}]"])
    images = ImageFiles(files, predict_pipeline(read_run_settings(cfg)))
    # One thread, as detcli.predict runs in the tests (conftest): a module fixture runs before
    # that per-test pin, and another thread count sums convolutions in another order.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():  # one image per call: conv results depend on the batch size
            outputs = [tv([images[i]["img"] / 255])[0] for i in range(len(files))]
    finally:
        torch.set_num_threads(threads)
    return cfg, checkpoint, files, outputs


def test_torchvision_weights_give_torchvision_detections(torchvision_run):
    cfg, checkpoint, files, outputs = torchvision_run
    result = detcli.predict(cfg, checkpoint, files, score_thr=0.0, device="cpu")
    assert sum(len(o["boxes"]) for o in outputs) >= 3  # the comparison has detections to compare
    for ref, pred in zip(outputs, result.predictions, strict=True):
        det = pred.detections
        assert len(det.boxes) == len(ref["boxes"])
        torch.testing.assert_close(det.boxes, ref["boxes"], atol=1e-3, rtol=0)
        torch.testing.assert_close(det.scores, ref["scores"], atol=1e-5, rtol=0)
        # torchvision's label k is COCO id k (row 0 background); detcli's class k - 1
        assert torch.equal(det.labels + 1, ref["labels"])
    # the class names are torchvision's, from its 91-row classifier
    assert result.classes[0] == "person" and len(result.classes) == 90


def _tiny_torchvision(path: Path) -> dict[str, torch.Tensor]:
    """torchvision's FasterRCNN on a ResNet-18 FPN (its names, 91 COCO rows), saved to `path`."""
    torch.manual_seed(1)
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5)
    model = FasterRCNN(backbone, num_classes=91)
    state = model.state_dict()
    torch.save(state, path)
    return state


TINY_AS_TORCHVISION = [
    "--set", "model.neck.out_channels=256",
    "--set", "model.rpn_head.in_channels=256",
    "--set", "model.rpn_head.feat_channels=256",
    "--set", "model.rpn_head.anchor_generator.scales=[8]",
    "--set", "model.roi_head.bbox_roi_extractor.out_channels=256",
    "--set", "model.roi_head.bbox_head.in_channels=256",
    "--set", "model.roi_head.bbox_head.fc_out_channels=1024",
]  # fmt: skip


def test_fine_tune_from_torchvision_reuses_backbone_neck_rpn(shapes_coco, tmp_path, cli):
    source = tmp_path / "tv_r18.pth"
    state = _tiny_torchvision(source)
    work = tmp_path / "w"
    done = cli(
        "train", str(SHAPES), "--work-dir", str(work), "--device", "cpu", "--load-from",
        str(source), "--set", f"data_root={shapes_coco.root}",
        "--set", "runner={type: IterBasedRunner, max_iters: 1}", "--set", "evaluation=null",
        "--set", "optimizer.lr=0.0", "--set", "optimizer.weight_decay=0.0", *TINY_AS_TORCHVISION,
    )  # fmt: skip
    assert done.code == 0, done.err
    log = " ".join((work / "train.log").read_text().split())
    assert "(torchvision format): reused backbone" in log
    assert "neck 16/16, rpn_head 6/6, roi_head 8/8" in log  # every tensor found a place
    assert "0 of 3 classes reuse the checkpoint's rows" in log  # shapes are no COCO class
    assert "square new (initialised" in log
    trained = torch.load(work / "iter_1.pth", weights_only=True)["state_dict"]
    # lr 0: the reused weights are as loaded, under detcli's names
    assert torch.equal(
        trained["neck.lateral_convs.0.conv.weight"], state["backbone.fpn.inner_blocks.0.0.weight"]
    )
    assert torch.equal(trained["rpn_head.rpn_cls.weight"], state["rpn.head.cls_logits.weight"])
    assert torch.equal(
        trained["backbone.body.layer1.0.conv1.weight"], state["backbone.body.layer1.0.conv1.weight"]
    )
    # the classifier keeps torchvision's background row (moved last); the class rows are new
    cls = trained["roi_head.bbox_head.fc_cls.weight"]
    assert cls.shape == (4, 1024)
    assert torch.equal(cls[3], state["roi_heads.box_predictor.cls_score.weight"][0])
    assert not any(
        torch.equal(cls[0], row) for row in state["roi_heads.box_predictor.cls_score.weight"]
    )


def test_checkpoint_of_another_network_is_refused(shapes_coco, tmp_path, cli, torchvision_run):
    _, r50, files, _ = torchvision_run  # ResNet-50 weights for the ResNet-18 shapes model
    for args in (
        ("train", str(SHAPES), "--work-dir", str(tmp_path / "w"), "--load-from", str(r50)),
        ("predict", str(SHAPES), str(r50), str(files[0]), "--out", str(tmp_path / "p")),
    ):
        refused = cli(*args, "--set", f"data_root={shapes_coco.root}", "--device", "cpu")
        message = " ".join(refused.err.split())
        assert refused.code == 2 and "Traceback" not in refused.err, refused.err
        assert "(torchvision format) is for another network" in message
        assert (
            "none of its neck tensors fits the config's neck and the backbone loads only in part"
            in message
        )
        assert "shape mismatch" in message


def test_zero_byte_and_non_checkpoint_files_are_refused(shapes_coco, tmp_path, cli):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    image = next(shapes_coco.val_img.glob("*.png"))
    for path, expected in ((empty, "is an empty file (0 bytes)"), (text, "Cannot read checkpoint")):
        refused = cli("predict", str(SHAPES), str(path), str(image), "--device", "cpu")
        assert refused.code == 2 and "Traceback" not in refused.err
        assert expected in " ".join(refused.err.split())


def test_class_mismatch_is_refused_for_eval_and_predict(shapes_coco, tmp_path, cli):
    from detcli.models import build_model

    cfg = load_config(SHAPES)
    model = build_model(cfg.model.to_dict())
    mmdet3 = tmp_path / "mmdet3.pth"  # MMDetection 3.x layout: class names in dataset_meta
    torch.save(
        {
            "meta": {
                "dataset_meta": {"classes": ("cat", "dog", "bird")},
                "mmengine_version": "0.10.7",
            },
            "state_dict": {
                k.replace("rpn_conv.0.", "rpn_conv."): v for k, v in model.state_dict().items()
            },
        },
        mmdet3,
    )
    image = next(shapes_coco.val_img.glob("*.png"))
    refused = cli(
        "predict", str(SHAPES), str(mmdet3), str(image), "--device", "cpu",
        "--set", f"data_root={shapes_coco.root}",
    )  # fmt: skip
    message = " ".join(refused.err.split())
    assert refused.code == 2 and "Traceback" not in refused.err, refused.err
    assert "(mmdet 3.x) was trained on other classes" in message
    assert "0: 'cat' vs 'square'" in message and "--load-from" in message


MMDET = REPO / "tests" / "fixtures" / "mmdet_ckpt"


def test_mmdetection_checkpoint_gives_mmdetections_detections_and_map():
    """A checkpoint MMDetection 3.3 trained itself (see tests/fixtures/mmdet_ckpt/README.md)."""
    import json

    cfg = load_config(
        MMDET / "detcli_faster-rcnn_r18-narrow_fpn_shapes.yaml", [f"data_root={MMDET / 'data'}/"]
    )
    result = detcli.evaluate(
        cfg, MMDET / "mmdet_faster_rcnn_r18_narrow_shapes.pth", split="test", device="cpu"
    )
    theirs = json.loads((MMDET / "mmdet_detections.json").read_text())
    tied = 0
    for ref, det in zip(theirs, result.detections, strict=True):
        assert len(det.boxes) == len(ref["boxes"]), ref["file_name"]
        torch.testing.assert_close(det.boxes, torch.tensor(ref["boxes"]), atol=1e-3, rtol=0)
        torch.testing.assert_close(det.scores, torch.tensor(ref["scores"]), atol=1e-4, rtol=0)
        assert det.labels.tolist() == ref["labels"], ref["file_name"]
        tied += len(ref["scores"]) - len(set(ref["scores"]))
    # 413 detections on 8 images; 30 repeat another box's exact score (the head's output for
    # RoIs its first fc zeroes entirely), so NMS must break ties as mmcv's does (README.md)
    assert sum(len(d.boxes) for d in result.detections) == 413 and tied == 30
    metrics = json.loads((MMDET / "mmdet_metrics.json").read_text())
    for name in ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"):
        # MMDetection rounds to 3 decimals: equal to its rounding
        assert result.metrics[f"bbox_{name}"] == pytest.approx(
            metrics[f"coco/bbox_{name}"], abs=5e-4
        ), name
