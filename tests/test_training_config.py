"""training_config.py: TrainingConfig's checks, train()'s overrides, and `t5cls train` options made from the fields."""

from __future__ import annotations

import dataclasses

import pytest

import t5cls
from t5cls import InputError, InputTypeError, TrainingConfig
from t5cls.cli import _train_config, build_parser
from t5cls.training import train

# One non-default value per field, as command-line tokens and as the value the config should hold.
# A new field without an entry here fails test_every_field_is_a_cli_option.
CLI_VALUES = {
    "output_dir": (["--output-dir", "elsewhere"], "elsewhere"),
    "text_column": (["--text-column", "sentence"], "sentence"),
    "text_pair_column": (["--text-pair-column", "hypothesis"], "hypothesis"),
    "label_column": (["--label-column", "tags"], "tags"),
    "label_separator": (["--label-separator", "|"], "|"),
    "problem_type": (["--problem-type", "regression"], "regression"),
    "labels": (["--labels", "neg, pos"], ["neg", "pos"]),
    "max_length": (["--max-length", "64"], 64),
    "mode": (["--mode", "text2text"], "text2text"),
    "template": (["--mode", "text2text", "--template", "topic: {text}"], "topic: {text}"),
    "num_decoder_layers": (["--num-decoder-layers", "0"], 0),
    "classifier_dropout": (["--classifier-dropout", "0.1"], 0.1),
    "lora": (["--lora", '{"r": 4, "lora_alpha": 8}'], {"r": 4, "lora_alpha": 8}),
    "lora_r": (["--lora-r", "8"], 8),
    "epochs": (["--epochs", "0.5"], 0.5),
    "learning_rate": (["--learning-rate", "3e-4"], 3e-4),
    "batch_size": (["--batch-size", "4"], 4),
    "eval_batch_size": (["--eval-batch-size", "64"], 64),
    "gradient_accumulation_steps": (["--gradient-accumulation-steps", "2"], 2),
    "optimizer": (["--optimizer", "adamw"], "adamw"),
    "weight_decay": (["--weight-decay", "0.01"], 0.01),
    "warmup_ratio": (["--warmup-ratio", "0.1"], 0.1),
    "bf16": (["--no-bf16"], False),
    "gradient_checkpointing": (["--gradient-checkpointing"], True),
    "seed": (["--seed", "7"], 7),
    "early_stopping": (["--early-stopping", "2"], 2),
    "checkpoint_steps": (["--checkpoint-steps", "10"], 10),
    "resume": (["--resume"], True),
    "overwrite": (["--overwrite"], True),
    "keep_checkpoints": (["--keep-checkpoints"], True),
    "show_progress_bar": (["--show-progress-bar"], True),
    "fit_temperature": (["--no-fit-temperature"], False),
    "training_args": (["--training-args", '{"logging_steps": 5}'], {"logging_steps": 5}),
}
BASE = ["train", "--model", "m", "--train", "t.csv"]


def _parse(*tokens: str) -> TrainingConfig:
    return _train_config(build_parser().parse_args([*BASE, *tokens]))


def test_every_field_is_a_cli_option():
    assert set(CLI_VALUES) == set(TrainingConfig.field_names())
    defaults = _parse("--output", "out")
    assert defaults == TrainingConfig(output_dir="out")  # options left out keep the dataclass defaults
    for name, (tokens, expected) in CLI_VALUES.items():
        config = _parse("--output", "out", *tokens)
        assert getattr(config, name) == expected, name
        changed = {f.name for f in dataclasses.fields(config) if getattr(config, f.name) != getattr(defaults, f.name)}
        assert name in changed and changed <= {name, "mode"}, (name, changed)


def test_cli_keeps_the_old_option_names_and_shows_the_help_texts(capsys):
    config = _parse("--output", "o", "--decoder-layers", "2", "--lora")
    assert (config.output_dir, config.num_decoder_layers, config.lora) == ("o", 2, True)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(TrainingConfig):
        assert "--" + f.name.replace("_", "-") in shown
        assert " ".join(f.metadata["help"].split()) in shown, f.name


@pytest.mark.parametrize(
    "tokens, match",
    [
        (["--epochs", "many"], "invalid float value"),
        (["--optimizer", "sgd"], "invalid choice: 'sgd'"),
        (["--lora", "{r: 4}"], "is not JSON"),
        (["--training-args", "[1]"], "not a JSON object"),
    ],
)
def test_cli_rejects_malformed_option_values(tokens, match, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*BASE, "--output", "o", *tokens])
    assert exc.value.code == 2 and match in capsys.readouterr().err


def test_cli_reports_a_bad_setting_as_one_line(capsys, tmp_path):
    code = t5cls.cli.main([*BASE, "--output", str(tmp_path / "o"), "--warmup-ratio", "1.5"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "warmup_ratio=1.5 must be in [0, 1)" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "settings, error, match",
    [
        ({"epochs": 0}, InputError, "epochs=0 must be a positive number"),
        ({"epochs": "3"}, InputTypeError, "epochs='3' is not valid; pass a number"),
        ({"batch_size": 0}, InputError, "batch_size=0 must be an integer >= 1"),
        ({"batch_size": 2.5}, InputTypeError, "batch_size=2.5 is not valid; pass an integer"),
        ({"batch_size": True}, InputTypeError, "batch_size=True"),
        ({"eval_batch_size": -1}, InputError, "eval_batch_size=-1 must be an integer >= 1"),
        ({"gradient_accumulation_steps": 0}, InputError, "gradient_accumulation_steps=0"),
        ({"learning_rate": 0.0}, InputError, "learning_rate=0.0 must be positive"),
        ({"weight_decay": -0.1}, InputError, "weight_decay=-0.1 must be >= 0"),
        ({"warmup_ratio": 1.0}, InputError, r"warmup_ratio=1.0 must be in \[0, 1\)"),
        ({"classifier_dropout": -0.5}, InputError, r"classifier_dropout=-0.5 must be in \[0, 1\)"),
        ({"max_length": 1}, InputError, "max_length=1 must be an integer >= 2 tokens"),
        ({"num_decoder_layers": -1}, InputError, "num_decoder_layers=-1 must be an integer >= 0"),
        ({"seed": -3}, InputError, "seed=-3 must be >= 0"),
        ({"early_stopping": 0}, InputError, "early_stopping=0 must be an integer >= 1"),
        ({"checkpoint_steps": 0}, InputError, "checkpoint_steps=0 must be an integer >= 1"),
        ({"lora_r": 0}, InputError, "lora_r=0 must be an integer >= 1"),
        ({"lora": 3}, InputTypeError, "lora=3: pass True"),
        ({"optimizer": "sgd"}, InputError, "optimizer='sgd' is not valid; pass 'adafactor' or 'adamw'"),
        ({"mode": "seq2seq"}, InputError, "mode='seq2seq' is not valid; pass 'classifier' or 'text2text'"),
        ({"problem_type": "multiclass"}, InputError, "problem_type='multiclass' is not valid"),
        ({"template": "x: {text}"}, InputError, "template='x: {text}' is the prompt of mode='text2text'"),
        ({"labels": "neg,pos"}, InputTypeError, r"labels='neg,pos' is one string; pass a list of label names, e.g. \['neg', 'pos'\]"),
        ({"labels": ["a", "a"]}, InputError, "repeat a name"),
        ({"labels": ["only"]}, InputError, "at least two label names"),
        ({"text_column": ""}, InputError, "text_column='' is empty"),
        ({"output_dir": ""}, InputError, "output_dir='' is empty"),
        ({"output_dir": 3}, InputTypeError, "output_dir=3 is not valid"),
        ({"resume": "yes"}, InputTypeError, "resume='yes' is not valid; pass True or False"),
        ({"training_args": {"deepspeedd": "ds.json"}}, InputError, "'deepspeedd' is not a transformers.TrainingArguments field. Did you mean 'deepspeed'"),
        ({"training_args": "ds.json"}, InputTypeError, "training_args='ds.json' is not valid"),
    ],
)
def test_bad_settings_name_the_value_and_the_fix(settings, error, match):
    with pytest.raises(error, match=match):
        TrainingConfig(**{"output_dir": "out", **settings})


def test_replace_checks_again_and_lora_r_sets_rank_and_alpha():
    config = TrainingConfig(output_dir="out", labels=("b", "a"))
    assert config.labels == ["b", "a"]  # any sequence of names, kept as a list in id order
    with pytest.raises(InputError, match="epochs=-1"):
        dataclasses.replace(config, epochs=-1)
    assert not config.uses_lora
    assert dataclasses.replace(config, lora_r=8).lora_options() == {"r": 8, "lora_alpha": 16}
    assert dataclasses.replace(config, lora={"lora_dropout": 0.0}, lora_r=4).lora_options() == {"lora_dropout": 0.0, "r": 4, "lora_alpha": 8}
    assert dataclasses.replace(config, lora=True).lora_options() is True


def test_train_overrides_are_checked_before_anything_is_read(tmp_path):
    missing = tmp_path / "missing.csv"  # never read: the settings fail first
    with pytest.raises(InputError, match="'epoch' is not a training setting. Did you mean 'epochs'"):
        train("m", missing, output_dir=tmp_path / "o", epoch=2)
    with pytest.raises(InputError, match="'learnin_rate' is not a training setting. Did you mean 'learning_rate'"):
        train("m", missing, config=TrainingConfig(output_dir=tmp_path / "o"), learnin_rate=1e-3)
    with pytest.raises(InputError, match="output_dir is missing"):
        train("m", missing)
    with pytest.raises(InputTypeError, match="pass a t5cls.TrainingConfig"):
        train("m", missing, config={"output_dir": "o"})
    with pytest.raises(InputError, match="batch_size=0"):
        train("m", missing, config=TrainingConfig(output_dir=tmp_path / "o"), batch_size=0)
    with pytest.raises(InputError, match="early_stopping needs eval data"):
        train("m", missing, output_dir=tmp_path / "o", early_stopping=2)
    assert not (tmp_path / "o").exists()
