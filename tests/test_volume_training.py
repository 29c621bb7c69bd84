"""Training on volumes end to end: from scratch on synthetic CT, scored per case in 3-D; head transfer; CLI errors."""
from __future__ import annotations

import pytest
from volume_data import write_lits

from unet3plus.cli import main
from unet3plus.data import VolumeDataset, VolumeOptions
from unet3plus.training import TrainConfig, Trainer

# any-foreground: 5 epochs of 9 steps are too few to compare samplers (seeds 0-2: best tumour Dice 0.28-0.71
# any-foreground, 0.25-0.82 class-balanced); the class-balanced default is measured in benchmarks/bench_tumour.py
LIVER_TUMOUR = VolumeOptions(classes=("liver", "tumour"), preset="standard", sampling="any-foreground")


@pytest.mark.slow  # about a minute of training
def test_from_scratch_held_out_per_case_liver_and_tumour_dice(tmp_path):
    train_data = VolumeDataset.from_folder(write_lits(tmp_path / "train", 3), options=LIVER_TUMOUR)
    held_out = VolumeDataset.from_folder(write_lits(tmp_path / "val", 2, first_seed=100), options=LIVER_TUMOUR)
    trainer = Trainer(train_data, held_out, TrainConfig(tmp_path / "run", epochs=5, batch_size=4, lr=2e-3,
                                                        augment=False, progress=False, seed=0),
                      log=lambda message: None)
    scores = []  # per-class Dice of every validation: whole held-out volumes, one row per case
    validate = trainer.validate
    trainer.validate = lambda: scores.append(validate()) or scores[-1]
    trainer.validate()
    result = trainer.fit()
    assert scores[0]["dice_per_case"].shape == (2, 2) and scores[0]["cases"] == ["volume-0", "volume-1"]
    liver, tumour = (max(s["mean_dice_per_class"][k] for s in scores[1:]) for k in (0, 1))
    start = scores[0]["mean_dice_per_class"]
    print(f"held-out per-case Dice: start liver {start[0]:.3f} tumour {start[1]:.3f}; best liver {liver:.3f}, "
          f"tumour {tumour:.3f} after {result.epochs_run} epochs")
    # chance level: the liver fills ~11% of a volume, the tumours ~1%
    assert start[0] < 0.3 and start[1] < 0.1
    assert liver > 0.85 and tumour > 0.4
    assert (tmp_path / "run" / "best.ckpt").exists()


def test_published_weights_to_liver_and_tumour_is_a_stated_head_transfer(tmp_path, golden_checkpoint):
    data = VolumeDataset.from_folder(write_lits(tmp_path / "data", 2), options=LIVER_TUMOUR)
    lines = []
    Trainer(data, None, TrainConfig(tmp_path / "run", checkpoint=golden_checkpoint, progress=False), log=lines.append)
    assert any(line.startswith("head transfer:") and "(background, liver, tumour)" in line and "outconv1.weight" in line
               for line in lines), lines


def test_cli_lists_bad_cases_and_writes_nothing(tmp_path, capsys):
    write_lits(tmp_path / "data", 3)
    (tmp_path / "data" / "volume-1.nii").write_bytes(b"broken")
    code = main(["train", "--volumes", str(tmp_path / "data"), "--classes", "liver,tumour",
                 "--out", str(tmp_path / "run"), "--no-progress"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error and "1 problem(s)" in error and "volume-1.nii" in error
    assert not (tmp_path / "run").exists()


def test_recipe_lits2017_sets_the_published_settings_and_explicit_options_win():
    from unet3plus.cli import build_parser
    from unet3plus.cli.train import apply_defaults

    args = build_parser().parse_args(["train", "--volumes", "v", "--out", "o", "--recipe", "lits2017", "--epochs", "3"])
    augmentation = apply_defaults(args)
    assert (args.lr, args.batch_size, args.epochs, args.loss, args.seed) == (3e-4, 2, 3, "bce_dice", 1)
    assert (args.classes, args.label_map, args.preset, args.slices, args.foreground_fraction, args.val_split) == \
        ("liver", {2: 1}, "lits2017", "labelled", 0.0, 0.2)
    assert augmentation.flip_probability == 0.5 and not augmentation.rotate90 and augmentation.scale_range == (1, 1)
    plain = build_parser().parse_args(["train", "--volumes", "v", "--out", "o"])
    assert apply_defaults(plain) is None and (plain.lr, plain.epochs, plain.foreground_fraction) == (1e-3, 50, 1 / 3)


def test_cli_refuses_2d_options_with_volumes(tmp_path, capsys):
    code = main(["train", "--volumes", str(tmp_path), "--n-classes", "3", "--out", str(tmp_path / "run")])
    assert code == 2 and "--n-classes do(es) not apply to --volumes" in capsys.readouterr().err
