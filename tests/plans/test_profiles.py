"""Profile sets: our file format (round trip, field-level errors), the original's layout, the generator."""

import json
from dataclasses import replace

import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.profiles.io import read_profiles, to_document, write_profiles
from ekya.profiles.original import read_original
from ekya.profiles.synthetic import generate_profile_set
from ekya.profiles.types import MeasuredUnder


def test_round_trip(tmp_path):
    ps = generate_profile_set(streams=3, windows=2, seed=4, pred_noise=0.05, cost_noise=0.1)
    path = tmp_path / "p.json"
    write_profiles(path, ps)
    back = read_profiles(path)
    assert back.truth == ps.truth and back.predicted == ps.predicted
    assert back.streams == ("cam0", "cam1", "cam2") and back.n_windows == 2
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]  # no temporary file left behind


def test_the_measured_window_and_cluster_round_trip_and_older_files_have_none(tmp_path):
    ps = replace(generate_profile_set(streams=2, windows=1, seed=0), measured_under=MeasuredUnder(100.0, 2, 0.1))
    write_profiles(tmp_path / "p.json", ps)
    assert json.loads((tmp_path / "p.json").read_text())["measured_under"] == {
        "window_seconds": 100.0, "accelerators": 2, "delta": 0.1}
    assert read_profiles(tmp_path / "p.json").measured_under == MeasuredUnder(100.0, 2, 0.1)
    assert read_profiles(_write(tmp_path, good_doc())).measured_under is None


@pytest.mark.parametrize("value, field", [({"window_seconds": 0.0, "accelerators": 1}, "measured_under.delta"),
                                          ({"window_seconds": 200, "accelerators": 1.5, "delta": 0.05},
                                           "measured_under.accelerators"),
                                          ("200", "measured_under")])
def test_a_bad_measured_under_names_the_field(tmp_path, value, field):
    with pytest.raises(EkyaError, match=field.replace(".", r"\.")):
        read_profiles(_write(tmp_path, {**good_doc(), "measured_under": value}))


def _write(tmp_path, doc):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    return path


def good_doc():
    return {"format": "ekya-profiles/1", "configs": {"c1": {"epochs": 5}},
            "streams": {"cam0": [{"start_accuracy": 0.6, "configs": {"c1": {"accuracy": 0.8, "cost": 10.0}}}]}}


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d["streams"]["cam0"][0].pop("start_accuracy"), "streams.cam0[0].start_accuracy"),
    (lambda d: d["streams"]["cam0"][0]["configs"]["c1"].pop("cost"), "streams.cam0[0].configs.c1.cost"),
    (lambda d: d["streams"]["cam0"][0]["configs"]["c1"].update(cost=-3), "streams.cam0[0].configs.c1.cost"),
    (lambda d: d["streams"]["cam0"][0]["configs"]["c1"].update(accuracy=1.2), "streams.cam0[0].configs.c1.accuracy"),
    (lambda d: d["streams"]["cam0"][0].update(start_accuracy=-0.1), "streams.cam0[0].start_accuracy"),
    (lambda d: d["streams"]["cam0"][0]["configs"].update(c9={"accuracy": 0.5, "cost": 1}),
     "streams.cam0[0].configs.c9"),
    (lambda d: d["streams"]["cam0"][0]["configs"]["c1"].update(predicted_accuracy="high"), "predicted_accuracy"),
    (lambda d: d.update(format="v0"), "format"),
    (lambda d: d["streams"].update(cam1=[]), "streams.cam1"),
])
def test_malformed_files_name_file_and_field(tmp_path, mutate, field):
    doc = good_doc()
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(EkyaError) as e:
        read_profiles(path)
    assert str(path) in str(e.value) and field in str(e.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(EkyaError, match="does not exist"):
        read_profiles(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{oops")
    with pytest.raises(EkyaError, match="not valid JSON"):
        read_profiles(tmp_path / "x.json")


def row(train_time, test_acc=0.0, test_n=0):
    return [0.0, train_time, 0.5, 0.5, 100, 0, 0, 0, 0, 0, 0, test_acc, test_n]


def write_original(root, cam, hp, tasks):
    d = root / cam
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{hp}_profile.json").write_text(json.dumps({t: rows for t, (rows, _) in tasks.items()}))
    (d / f"{hp}_retraining_result.json").write_text(json.dumps(
        {"val_acc": {}, "test_acc": {}, "preretrain_test_acc": {t: pre for t, (_, pre) in tasks.items()}}))


def test_original_layout_without_epoch_off_by_one(tmp_path):
    rows = [row(2.0), row(2.0), row(2.0, 0.7, 50), row(2.0), row(2.0), row(2.0, 0.8, 50)]
    write_original(tmp_path, "zurich", "0", {"1": (rows, 0.60), "2": (rows, 0.62)})
    write_original(tmp_path, "zurich", "1", {"1": (rows[:3], 0.55), "2": (rows[:3], 0.65)})
    write_original(tmp_path, "jena", "0", {"1": (rows, 0.5)})
    ps = read_original(tmp_path)
    assert ps.window_ids == ("1",)  # only tasks profiled for every camera
    z = {p.stream: p for p in ps.truth[0]}["zurich"]
    assert z.start_accuracy == pytest.approx(0.55)  # min over hps, as the original
    c = {c.config: c for c in z.configs}
    # row 2 ends after 3 epochs: named 0_3 and charged 3 epochs (the original said 0_2 and charged 3)
    assert c["0_3"].accuracy == pytest.approx(0.7) and c["0_3"].cost == pytest.approx(6.0)
    assert c["0_6"].accuracy == pytest.approx(0.8) and c["0_6"].cost == pytest.approx(12.0)
    assert set(c) == {"0_3", "0_6", "1_3"}
    only = read_original(tmp_path, cameras=["zurich"], epochs=[6])
    assert [x.config for x in only.truth[0][0].configs] == ["0_6"]


def test_original_layout_errors(tmp_path):
    write_original(tmp_path, "zurich", "0", {"1": ([row(1.0, 0.5, 10)], 0.5)})
    (tmp_path / "zurich" / "0_retraining_result.json").unlink()
    with pytest.raises(EkyaError, match="0_retraining_result.json"):
        read_original(tmp_path)
    write_original(tmp_path, "zurich", "0", {"1": ([[1, 2, 3]], 0.5)})
    with pytest.raises(EkyaError, match="13 columns"):
        read_original(tmp_path)


def test_synthetic_is_seeded_and_realistic():
    a, b = generate_profile_set(streams=8, windows=3, seed=7), generate_profile_set(streams=8, windows=3, seed=7)
    assert a == b and generate_profile_set(streams=8, windows=3, seed=8) != a
    costs = np.array([c.cost for p in a.truth[0] for c in p.configs])
    assert costs.max() / costs.min() >= 100
    p = a.truth[0][0]
    acc = {c.config: c.accuracy for c in p.configs}
    assert len(acc) == 18
    # diminishing returns with epochs (on average over streams)
    gains = np.array([[{c.config: c.accuracy for c in q.configs}[f"head_d1_e{e}"] for e in (5, 15, 30)]
                      for q in a.truth[0]])
    assert np.mean(gains[:, 1] - gains[:, 0]) > np.mean(gains[:, 2] - gains[:, 1])
    # some configs are worse than others, some even worse than not retraining
    assert any(c.accuracy < q.start_accuracy for q in a.truth[0] for c in q.configs)
    # heterogeneous drift: start accuracies differ across cameras
    assert np.ptp([q.start_accuracy for q in a.truth[0]]) > 0.05
    noisy = generate_profile_set(streams=8, windows=3, seed=7, pred_noise=0.1)
    assert noisy.truth == a.truth and noisy.predicted != a.predicted
    assert to_document(noisy)["streams"]["cam0"][0]["configs"]["head_d0.1_e5"].get("predicted_accuracy") is not None


def test_synthetic_over_a_given_config_space():
    space = {"tiny": {"frozen": True, "data_fraction": 0.2, "epochs": 2},
             "big": {"frozen": False, "data_fraction": 1.0, "epochs": 10, "backbone": "resnet50"}}
    ps = generate_profile_set(streams=2, windows=1, seed=0, space=space)
    c = {x.config: x for x in ps.truth[0][0].configs}
    assert set(c) == {"tiny", "big"} and c["big"].cost > 20 * c["tiny"].cost
    with pytest.raises(EkyaError, match="'broken'.*epochs"):
        generate_profile_set(streams=1, windows=1, space={"broken": {"frozen": True, "data_fraction": 0.5}})
