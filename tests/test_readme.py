"""README.md stays true: its set-up commands are what CI runs, its detcli commands work."""

from __future__ import annotations

import json
import re
import shlex

from conftest import REPO, run_detcli

README = (REPO / "README.md").read_text(encoding="utf-8")
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
YAML_FILES = {
    block.splitlines()[0].removeprefix("# ").strip(): block
    for block in re.findall(r"```yaml\n(.*?)```", README, flags=re.S)
    if re.match(r"# [\w.-]+\.yaml\n", block)  # files the user writes next to configs/
}
EXAMPLE_PLUGIN = "./plugins/detcli-plugin-example"
# The full demo (500 images, 8 epochs: minutes) is measured for README by hand, not here.
DEMO_TEST_SIZE = ["--train-images", "16", "--val-images", "8", "--set", "runner.max_epochs=1"]


def test_first_two_commands_are_install_plus_demo_and_the_ci_test_command():
    first, second = (block.strip() for block in BASH_BLOCKS[:2])
    assert first.startswith("pip install") and first.endswith("detcli demo")
    assert "nox -s lint tests" in second
    ci = (REPO / ".ci" / "run").read_text()
    assert "nox" in ci and "-s lint tests" in ci


def test_every_detcli_command_in_readme_runs_in_order(tmp_path, plugin_env):
    """A user's session: README's commands one after another in a fresh folder next to configs/.

    The config files README shows (`# name.yaml` blocks) are written first, as the user would;
    `pip install` of the example plugin is a real install (into a --target folder on PYTHONPATH).
    """
    for name in ("configs", "plugins"):
        (tmp_path / name).symlink_to(REPO / name)
    assert "my_dataset.yaml" in YAML_FILES
    for name, text in YAML_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    env: dict[str, str] = {}
    commands = []
    for block in BASH_BLOCKS:
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.strip()
                if part == f"pip install {EXAMPLE_PLUGIN}":
                    env = plugin_env(REPO / EXAMPLE_PLUGIN)
                elif part.startswith("detcli "):
                    commands.append((part, dict(env)))
    assert len(commands) >= 20
    outputs: dict[str, str] = {}
    for command, command_env in commands:
        args = shlex.split(command)[1:]
        if args == ["demo"]:
            args += DEMO_TEST_SIZE
        # The walk-through's training is minutes of CPU; a busy machine must not time it out.
        timeout = 1200 if args[0] == "train" else 300
        result = run_detcli(*args, cwd=tmp_path, env=command_env, timeout=timeout)
        # `check` on the reference configs names their data files, absent here: exit 2
        allowed = (0, 2) if args[0] == "check" and "trash" in command else (0,)
        assert result.code in allowed, (command, result.out[-2000:], result.err[-2000:])
        assert "Traceback" not in result.err, command
        outputs[command] = result.out + result.err
    assert "bbox_mAP" in (tmp_path / "runs/demo/eval/metrics.json").read_text()
    assert list((tmp_path / "runs/demo/predictions").glob("*.png"))
    assert (tmp_path / "runs/shapes/epoch_2.pth").is_file()  # the resumed run reached epoch 2
    assert list((tmp_path / "runs/show").glob("*.png"))
    assert (tmp_path / "runs/shapes/submission.csv").read_text().startswith("PredictionString")
    # The own-dataset walk-through ends with a model that finds the shapes, not an empty one.
    own_eval = next(out for cmd, out in outputs.items() if cmd.startswith("detcli eval my_dataset"))
    found = re.search(r"AP @\[IoU=0\.50:0\.95\]\W*([\d.]+)", own_eval)
    assert found and float(found[1]) > 0.3, own_eval[-3000:]
    assert "warnings" not in next(
        v for k, v in outputs.items() if k == "detcli check my_dataset.yaml"
    )
    val_images = list((tmp_path / "data/mine/val").glob("*.png"))
    predictions = list((tmp_path / "runs/mine/predictions").glob("*.json"))
    assert len(predictions) == len(val_images)
    confident = [
        any(d["score"] > 0.5 for d in json.loads(p.read_text())["detections"]) for p in predictions
    ]
    assert sum(confident) >= 0.9 * len(predictions)  # real detections on (nearly) every image
    assert (tmp_path / "runs/example/epoch_1.pth").is_file()
