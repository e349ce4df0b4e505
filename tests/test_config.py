import subprocess
import sys
from pathlib import Path

import pytest

from reface_tf.config import Config, build_parser, config_from_args, load_config, load_yaml, merge_for_resume, save_yaml, validate
from reface_tf.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_tutorial_settings_with_instance_norm():
    cfg = Config()
    assert (cfg.data.image_size, cfg.data.load_size, cfg.optim.batch_size) == (256, 286, 1)
    assert (cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.beta1) == (2e-4, 2e-4, 0.5)
    assert (cfg.loss.lambda_l1, cfg.loss.adversarial) == (100.0, "bce")
    # instance norm: batch norm at batch 1 with its moving statistics at inference collapsed on real faces
    assert (cfg.model.generator_depth, cfg.model.generator_filters, cfg.model.norm) == (8, 64, "instance")
    assert cfg.model.inference_mode == "eval"


def test_norm_batch_inference_mode_train_is_the_tutorial_network_and_warns_only_in_eval_mode(caplog):
    from reface_tf.models import discriminator_from_config, generator_from_config

    tutorial = load_config(["--norm", "batch", "--inference-mode", "train"])
    assert "collapse" not in caplog.text
    assert generator_from_config(tutorial).count_params() == 54_425_859  # innermost batch norm included
    assert discriminator_from_config(tutorial).count_params() == 2_770_433
    innermost = "down7_norm"  # the 1x1 block: batch norm of a 1x1 map at batch 1 outputs its offset
    assert innermost in {layer.name for layer in generator_from_config(tutorial).layers}
    assert innermost not in {layer.name for layer in generator_from_config(Config()).layers}
    load_config(["--norm", "batch"])
    assert "--norm batch with --inference-mode eval" in caplog.text and "--norm instance" in caplog.text
    caplog.clear()
    load_config(["--norm", "batch", "--batch-size", "8"])
    assert "collapse" not in caplog.text


def test_retired_output_channels_key_reads_back_only_with_its_old_value(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("model:\n  output_channels: 3\n  norm: batch\n")
    assert load_yaml(path).model.norm == "batch"
    path.write_text("model:\n  output_channels: 1\n")
    with pytest.raises(ConfigError, match="output_channels = 1 is no longer supported"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="unrecognized arguments: --output-channels"):
        load_config(["--output-channels", "1"])


def test_flags_override_yaml_which_overrides_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  epochs: 7\n  batch_size: 4\nloss:\n  lambda_l1: 50\n")
    cfg = load_config(["--config", str(path), "--epochs", "450", "--seed", "3", "--no-flip"])
    assert cfg.optim.epochs == 450 and cfg.optim.batch_size == 4 and cfg.loss.lambda_l1 == 50.0
    assert cfg.runtime.seed == 3 and cfg.data.flip is False


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(["--image-size", "128", "--generator-depth", "7", "--perceptual-layers", "block1_conv2,block2_conv2"])
    save_yaml(cfg, tmp_path / "config.yaml")
    assert load_yaml(tmp_path / "config.yaml") == cfg
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("argv, words", [
    (["--epochs", "-3"], ["--epochs", "at least 1"]),
    (["--image-size", "100"], ["--image-size", "divisible by 2^generator_depth = 256", "256"]),
    (["--image-size", "100", "--generator-depth", "5"], ["--image-size", "multiple of 32 such as 96"]),
    (["--data", "/no/such/dir"], ["--data", "/no/such/dir", "does not exist"]),
    (["--norm", "layer"], ["--norm", "not one of batch, instance, none"]),
    (["--batch-size", "two"], ["--batch-size", "not a valid int"]),
    (["--lr-policy", "linear"], ["--epochs-decay"]),
    (["--lambda-identity", "10"], ["--identity-model"]),
    (["--load-size", "200"], ["--load-size", "smaller than --image-size"]),
    (["--bogus-flag", "1"], ["unrecognized arguments", "--bogus-flag"]),
    (["--time-limit", "-5"], ["--time-limit", "seconds >= 0"]),
])
def test_invalid_values_name_the_flag_and_the_fix(argv, words):
    with pytest.raises(ConfigError) as err:
        load_config(argv)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_unknown_yaml_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optim.epoch'.*epochs"):
        load_config(["--config", str(path)])


def test_resume_keeps_the_architecture_but_accepts_more_epochs():
    saved = load_config(["--epochs", "2"])
    args = build_parser().parse_args(["--epochs", "5"])
    cli, explicit = config_from_args(args)
    assert merge_for_resume(saved, cli, explicit).optim.epochs == 5
    cli, explicit = config_from_args(build_parser().parse_args(["--image-size", "128"]))
    with pytest.raises(ConfigError, match="--image-size.*new --run-dir"):
        merge_for_resume(saved, cli, explicit)


def test_train_cli_rejects_bad_options_with_one_line_before_tensorflow_starts():
    result = subprocess.run([sys.executable, "-X", "importtime", "train.py", "--epochs", "-1"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert errors == ["error: --epochs (optim.epochs): must be at least 1, got -1"]
    assert " tensorflow\n" not in result.stderr and "| tensorflow" not in result.stderr


@pytest.mark.parametrize("source", ["defaults", "configs/demo.yaml", "configs/fast.yaml"])
def test_validate_accepts_defaults_and_shipped_configs(source):
    cfg = Config() if source == "defaults" else load_yaml(ROOT / source)
    assert validate(cfg) is None
    # the same config one field away from valid is refused, so the pass above means something
    cfg.data.image_size = cfg.data.image_size + 2
    with pytest.raises(ConfigError, match="--image-size"):
        validate(cfg)
