"""Results files on a real COCO set: COCO json with original ids, competition CSV, partial file,
and loading results back (refusing a file made for another dataset)."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import pytest
import torch

from detcli.data.coco import CocoDataset
from detcli.errors import DataError
from detcli.evaluation import evaluate_detections
from detcli.evaluation.results_files import (
    PartialResults,
    load_results_json,
    partial_path,
    write_prediction_csv,
    write_results_json,
)
from detcli.structures import Detections

from .test_coco_metric import _noisy


@pytest.fixture(scope="module")
def subset(shapes_coco):
    """circle and triangle only: labels 0, 1 are the json's category ids 2, 3."""
    return CocoDataset(
        str(shapes_coco.val_ann),
        [],
        str(shapes_coco.val_img),
        classes=["circle", "triangle"],
        test_mode=True,
    )


def _noisy_two_classes(dataset) -> list[Detections]:
    return [Detections(d.boxes, d.scores, d.labels % 2) for d in _noisy(dataset, seed=3)]


def test_results_json_uses_original_ids_and_xywh_and_scores_like_pycocotools(subset, tmp_path):
    from pycocotools.cocoeval import COCOeval

    dets = _noisy_two_classes(subset)
    path = write_results_json(tmp_path / "r.bbox.json", subset, dets)
    rows = json.loads(path.read_text())
    assert len(rows) == sum(len(d) for d in dets)
    assert {r["category_id"] for r in rows} == {2, 3}  # not the labels 0, 1
    first = next(i for i, d in enumerate(dets) if len(d))
    x1, y1, x2, y2 = dets[first].boxes[0].tolist()
    assert rows[0]["image_id"] == subset.img_ids[first]
    assert rows[0]["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=1e-4)
    # the file as a COCO server reads it: pycocotools' loadRes + COCOeval, same 12 numbers
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(subset.coco, subset.coco.loadRes(str(path)), "bbox")
        coco_eval.params.imgIds = subset.img_ids
        coco_eval.params.catIds = subset.cat_ids
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    ours = evaluate_detections(subset, dets, classwise=False)
    assert list(ours.values()) == pytest.approx(coco_eval.stats.tolist(), abs=1e-6)


def test_results_json_loads_back_to_the_same_scores(subset, tmp_path):
    dets = _noisy_two_classes(subset)
    path = write_results_json(tmp_path / "r.json", subset, dets)
    loaded = load_results_json(path, subset)
    assert len(loaded) == len(subset)
    assert [len(d) for d in loaded] == [len(d) for d in dets]
    assert evaluate_detections(subset, loaded) == pytest.approx(
        evaluate_detections(subset, dets), abs=1e-9, nan_ok=True
    )


def test_results_json_for_another_dataset_is_refused(subset, shapes_coco, tmp_path):
    dets = _noisy_two_classes(subset)
    rows = json.loads(write_results_json(tmp_path / "r.json", subset, dets).read_text())
    wrong_images = [dict(r, image_id=r["image_id"] + 1000) for r in rows]
    (tmp_path / "a.json").write_text(json.dumps(wrong_images))
    with pytest.raises(DataError, match=r"different dataset.*image id\(s\).*e\.g\. 100"):
        load_results_json(tmp_path / "a.json", subset)
    # square (category 1) is outside the two-class subset
    wrong_cats = [dict(r, category_id=1) for r in rows]
    (tmp_path / "b.json").write_text(json.dumps(wrong_cats))
    with pytest.raises(DataError, match=r"category id\(s\) outside.*\['circle', 'triangle'\]"):
        load_results_json(tmp_path / "b.json", subset)
    (tmp_path / "c.json").write_text('{"not": "a list"}')
    with pytest.raises(DataError, match="JSON list of COCO results"):
        load_results_json(tmp_path / "c.json", subset)
    (tmp_path / "d.json").write_text("[{")
    with pytest.raises(DataError, match="not valid JSON"):
        load_results_json(tmp_path / "d.json", subset)


def test_prediction_csv_has_one_row_per_image_with_class_index_and_xyxy(subset, tmp_path):
    dets = _noisy_two_classes(subset)
    dets[0] = Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64))
    path = write_prediction_csv(tmp_path / "sub.csv", subset, dets)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["PredictionString", "image_id"]
    assert len(rows) == len(subset) + 1
    assert rows[1][0] == ""  # an image without detections still has its row
    for (string, image_id), det, idx in zip(rows[1:], dets, range(len(subset)), strict=True):
        assert image_id == subset.get_img_info(idx)["file_name"]
        values = torch.tensor([float(v) for v in string.split()]).reshape(-1, 6)
        assert values[:, 0].long().tolist() == det.labels.tolist()
        assert values[:, 1].tolist() == pytest.approx(det.scores.tolist(), abs=1e-6)
        assert torch.allclose(values[:, 2:], det.boxes, atol=0.006)


def test_partial_results_stream_lines_and_go_away_once_final(tmp_path):
    out = tmp_path / "r.json"
    partial = PartialResults(out)
    det = Detections(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([0.5]), torch.tensor([1]))
    partial.add(7, det)
    partial.flush()
    line = json.loads(partial_path(out).read_text().splitlines()[0])
    assert line == {"image_id": 7, "boxes": [[1.0, 2.0, 3.0, 4.0]], "scores": [0.5], "labels": [1]}
    partial.discard()
    assert not partial_path(out).exists()
