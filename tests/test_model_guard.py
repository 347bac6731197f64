"""The guard on models from elsewhere: the shipped ECG5000 model on MIT-BIH record 100 is called out with its numbers,
a threshold re-set on the data without labels quiets it, and a model fitted on the data itself is never cautioned."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ecgviz.checkpoint.store import SHIPPED_CHECKPOINT
from ecgviz.dashboard import model_guard, session
from ecgviz.io.recording import read_recording
from ecgviz.signal.beats import cut_beats
from tests.record_files import MITDB


@pytest.fixture(scope="module")
def shipped_on_100():
    data = session.data_from_recording(cut_beats(read_recording(MITDB / "100.hea")), "100")
    model = session.model_from_path(SHIPPED_CHECKPOINT, source="shipped")
    return model, data, session.scores(model, data)


def test_the_shipped_model_on_record_100_is_called_out_with_its_numbers(shipped_on_100):
    model, data, errors = shipped_on_100
    caution = model_guard.caution_for(model, data, errors, model.ckpt.threshold, ["N"])
    assert caution is not None
    assert caution.flagged == caution.beats == 2271  # every beat, as the ECG5000 model's threshold is below them all
    assert caution.reasons == ("flags too many", "below every score")
    assert caution.abnormal_share == pytest.approx(34 / 2271)
    text = caution.message()
    assert text.startswith("The shipped ECG5000 model was fitted on other data: here it flags 2,271 of 2,271 beats")
    assert f"threshold {model.ckpt.threshold:.4g}" in text and f"{errors.min():.4g} to {errors.max():.4g}" in text
    assert "The labels call 1.5% of them abnormal" in text
    # the label-free threshold it offers: the 98th percentile of these scores, which flags 2 % of the beats
    assert caution.reset_to == pytest.approx(np.percentile(errors, 98))
    assert (errors > caution.reset_to).mean() == pytest.approx(0.02, abs=1 / 2271)
    assert model_guard.caution_for(model, data, errors, caution.reset_to, ["N"]) is None
    assert model_guard.caution_for(model, data, errors, caution.reset_to, []) is None


def test_a_threshold_above_every_score_flags_nothing_and_is_said(shipped_on_100):
    model, data, errors = shipped_on_100
    caution = model_guard.caution_for(model, data, errors, float(errors.max()) * 2, [])
    assert caution.reasons == ("above every score",) and caution.flagged == 0
    assert "so it flags none" in caution.message()


def test_models_fitted_on_the_data_itself_are_not_cautioned(shipped_on_100):
    model, data, errors = shipped_on_100
    assert model_guard.check(errors, 0.0, model="m", from_elsewhere=False) is None
    # the same checkpoint, as if it had been fitted on record 100: its own data, however many beats it flags
    own = session.ActiveModel(ckpt=replace(model.ckpt, data_fingerprint=data.fingerprint), id="own", name="own",
                              source="saved")
    assert model_guard.caution_for(own, data, errors, model.ckpt.threshold, ["N"]) is None


def test_the_allowance_grows_with_the_labelled_abnormal_share():
    scores = np.arange(1000.0)
    at = 599.5  # flags 40 % of the beats
    assert model_guard.check(scores, at, model="m", from_elsewhere=True).reasons == ("flags too many",)
    assert model_guard.check(scores, at, model="m", from_elsewhere=True, abnormal_share=0.42) is None
    assert model_guard.check(scores, at, model="m", from_elsewhere=True, abnormal_share=0.25) is not None
    assert model_guard.check(scores, 899.5, model="m", from_elsewhere=True) is None  # 10 %: not more than allowed


def test_the_shipped_checkpoint_is_named_as_the_ecg5000_model(tmp_path):
    assert model_guard.model_label("anything", SHIPPED_CHECKPOINT) == "the shipped ECG5000 model"
    assert model_guard.model_label("mine", tmp_path / "mine.pt") == "the model 'mine'"
