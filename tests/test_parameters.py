"""bnnlib.project.parameters: papermill's strings read as values, every bad value one line before any fit."""

from __future__ import annotations

import pytest

from bnnlib.errors import BnnlibError
from bnnlib.project.parameters import checked_parameters, parse_text


def test_papermill_strings_become_values():
    got = checked_parameters({
        "priors": '["laplace"]', "hidden": "[128, 64]", "draws": "50", "steps": "None", "force": "true",
        "aux_targets": "['target_janet_20']", "long_target": "target_nomi_60", "feature_set": "small",
        "architectures": "[[], [8]]", "lr_bnn": "1e-3", "seed": "3",
    })
    assert got == {
        "priors": ["laplace"], "hidden": [128, 64], "draws": 50, "steps": None, "force": True,
        "aux_targets": ["target_janet_20"], "long_target": "target_nomi_60", "feature_set": "small",
        "architectures": [[], [8]], "lr_bnn": 1e-3, "seed": 3,
    }


def test_real_values_pass_unchanged_and_unknown_names_pass_through():
    params = {"priors": ["flat", "normal"], "draws": 1000, "jobs": 2, "alpha": "[1]", "title": "x"}
    assert checked_parameters(params) == params


def test_a_string_for_an_unknown_name_is_read_by_its_default():
    got = checked_parameters({"widths": "[1, 2]", "label": "[a]"}, {"widths": [3], "label": "b"})
    assert got == {"widths": [1, 2], "label": "[a]"}


def test_one_name_is_a_list_of_one():
    assert checked_parameters({"priors": "laplace", "hypotheses": "h2"}) == {"priors": ["laplace"], "hypotheses": ["h2"]}


def test_none_as_text_is_none_where_none_is_allowed():
    assert checked_parameters({"long_target": "None", "steps": "null", "lr_bnn_scale": "None"}) == {
        "long_target": None, "steps": None, "lr_bnn_scale": None}


def test_yaml_forms_are_read():
    assert parse_text("[laplace, flat]") == ["laplace", "flat"]
    assert parse_text("null") is None and parse_text("None") is None
    assert parse_text("plain words") == "plain words"


@pytest.mark.parametrize("params, words", [
    ({"priors": "[]"}, "priors = [] is empty"),
    ({"priors": []}, "priors = [] is empty"),
    ({"priors": ["flat", "uniform"]}, "priors"),
    ({"priors": ["cauchy"]}, "'cauchy'"),
    ({"draws": 1.5}, "draws = 1.5 is not a whole number"),
    ({"draws": "abc"}, "draws = 'abc'"),
    ({"draws": 0}, "draws = 0"),
    ({"draws": True}, "draws = True"),
    ({"jobs": 0}, "jobs = 0"),
    ({"jobs": 1000}, "jobs = 1000"),
    ({"hidden": 64}, "hidden = 64"),
    ({"hidden": "64"}, "hidden = 64"),
    ({"hidden": [128, 0]}, "hidden"),
    ({"hidden": [128, 6.5]}, "hidden"),
    ({"architectures": []}, "architectures"),
    ({"architectures": [[1], [2]]}, "repeats a number of hidden layers"),
    ({"epochs": -1}, "epochs"),
    ({"batch_size": "big"}, "batch_size"),
    ({"steps": 0}, "steps"),
    ({"seed": -1}, "seed"),
    ({"lr_bnn": 0}, "lr_bnn"),
    ({"lr_bnn": float("nan")}, "lr_bnn"),
    ({"init_scale": "small"}, "init_scale"),
    ({"estimator": "magic"}, "estimator"),
    ({"precision": "fp8"}, "precision"),
    ({"synthetic_profile": "huge"}, "synthetic_profile"),
    ({"data_source": "kaggle"}, "data_source"),
    ({"force": "maybe"}, "force"),
    ({"main_target": ""}, "main_target"),
    ({"hypotheses": ["h9"]}, "'h9'"),
    ({"hypotheses": []}, "hypotheses"),
    ({"aux_targets": [1]}, "aux_targets"),
    ({"priors": ["flat"], "divergence_prior": "laplace"}, "divergence_prior"),
    ({"data_source": "synthetic", "data_dir": "."}, "data_dir"),
    ({"data_dir": "/no/such/folder"}, "data_dir"),
])
def test_bad_values_are_one_line_naming_the_parameter(params, words):
    with pytest.raises(BnnlibError) as caught:
        checked_parameters(params)
    message = str(caught.value)
    assert words in message
    assert "\n" not in message and message.startswith("parameter ")


def test_paths_must_be_writable_folders(tmp_path):
    (tmp_path / "file").write_text("x")
    for bad in ("/proc/x", str(tmp_path / "file" / "below")):
        with pytest.raises(BnnlibError, match="data_root"):
            checked_parameters({"data_root": bad})
    assert checked_parameters({"cache_dir": "new/cache"}, root=tmp_path) == {"cache_dir": "new/cache"}
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # the probe leaves nothing behind


def test_relative_paths_are_read_against_root(tmp_path):
    (tmp_path / "data").mkdir()
    assert checked_parameters({"data_dir": "data"}, root=tmp_path) == {"data_dir": "data"}
    with pytest.raises(BnnlibError, match="data_dir"):
        checked_parameters({"data_dir": "data"}, root=tmp_path / "elsewhere")
