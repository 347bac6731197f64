"""Figure builders: traces carry the numbers they were given."""

from __future__ import annotations

import numpy as np
import pytest

from ecgviz.dashboard import figures


@pytest.fixture(scope="module")
def errors():
    rng = np.random.default_rng(0)
    normal = rng.normal(10, 1, 300)
    abnormal = rng.normal(20, 3, 60)
    return np.concatenate([normal, abnormal]), np.array(["1"] * 300 + ["2"] * 60)


def test_histogram_bins_count_every_beat_once_per_group(errors):
    e, labels = errors
    bins = figures.histogram_bins(e, {"Normal": labels == "1", "PVC": labels == "2"}, n_bins=40)
    assert bins.edges.shape == (41,)
    assert bins.edges[0] == pytest.approx(e.min()) and bins.edges[-1] == pytest.approx(e.max())
    assert bins.counts["Normal"].sum() == 300 and bins.counts["PVC"].sum() == 60
    assert np.array_equal(bins.counts["PVC"], np.histogram(e[labels == "2"], bins=bins.edges)[0])
    assert set(bins.colors) == {"Normal", "PVC"}


def test_histogram_bins_survive_a_constant_error():
    bins = figures.histogram_bins(np.full(5, 3.0), {"all": np.arange(5)}, n_bins=4)
    assert bins.counts["all"].sum() == 5
    assert bins.edges[0] < 3.0 < bins.edges[-1]


def test_thin_keeps_ends_and_caps_points():
    x = np.arange(10_000, dtype=float)
    (t,) = figures.thin(x, max_points=100)
    assert len(t) <= 100 and t[0] == 0 and t[-1] == 9_999
    (same,) = figures.thin(x[:50], max_points=100)
    assert len(same) == 50


def test_roc_and_pr_show_the_operating_point_and_area():
    fpr = np.linspace(0, 1, 5000)
    fig = figures.roc_figure(fpr, np.sqrt(fpr), 0.667, (0.1, 0.9))
    assert "0.667" in fig.layout.title.text
    assert len(fig.data[1].x) <= figures.MAX_CURVE_POINTS  # long curves are thinned
    assert (fig.data[-1].x[0], fig.data[-1].y[0]) == (0.1, 0.9)
    pr = figures.pr_figure(np.array([1.0, 0.8, 0.5]), np.array([0.0, 0.5, 1.0]), None, (0.5, 0.8))
    assert pr.layout.title.text == "Precision-recall"
    assert list(pr.data[0].x) == [0.0, 0.5, 1.0] and (pr.data[-1].x[0], pr.data[-1].y[0]) == (0.5, 0.8)


def test_confusion_figure_shows_counts():
    fig = figures.confusion_figure(np.array([[90, 10], [5, 45]]))
    assert np.allclose(np.asarray(fig.data[0].z), [[0.9, 0.1], [0.1, 0.9]])  # coloured by share of the true class
    assert fig.data[0].text[0][1] == "10<br>10.0%" and fig.data[0].text[1][1] == "45<br>90.0%"


def test_beat_figure_overlays_original_and_reconstruction():
    x = np.sin(np.linspace(0, 6, 140))
    fig = figures.beat_figure(x, x * 0.9, title="beat 7")
    assert np.allclose(fig.data[0].y, x) and np.allclose(fig.data[1].y, x * 0.9)
    assert fig.data[1].fill == "tonexty"
    assert fig.layout.title.text == "beat 7"


def test_class_preview_band_is_mean_plus_minus_std():
    rng = np.random.default_rng(1)
    beats = rng.normal(size=(20, 30))
    fig = figures.class_preview(beats, n_examples=3)
    mean_trace = fig.data[-1]
    assert np.allclose(mean_trace.y, beats.mean(axis=0))
    assert np.allclose(fig.data[-3].y, beats.mean(axis=0) + beats.std(axis=0))
    assert np.allclose(fig.data[-2].y, beats.mean(axis=0) - beats.std(axis=0))
    assert sum(t.name == "examples" for t in fig.data) == 3
    assert len(figures.class_preview(np.empty((0, 30))).data) == 0


def test_loss_curves_plot_both_losses_and_tolerate_a_missing_validation_loss():
    history = [{"epoch": 1, "train_loss": 2.0, "val_loss": 2.5}, {"epoch": 2, "train_loss": 1.0, "val_loss": None}]
    fig = figures.loss_curves(history, best_epoch=1)
    assert list(fig.data[0].y) == [2.0, 1.0]
    assert fig.data[1].y[0] == 2.5 and np.isnan(fig.data[1].y[1])
    best = fig.data[2]  # a trace, so the legend names it
    assert best.name == "best epoch (1)" and list(best.x) == [1, 1] and list(best.y) == [1.0, 2.5]


def test_every_figure_is_valid_plotly():
    """The builders skip plotly's validation for speed, so it is done here instead."""
    import plotly.graph_objects as go

    th = np.linspace(0, 1, 11)
    built = [
        figures.roc_figure(th, th, 0.5, (0.2, 0.3)),
        figures.pr_figure(th, th, 0.5, (0.2, 0.3)),
        figures.confusion_figure(np.array([[1, 2], [3, 4]])),
        figures.beat_figure(th, th),
        figures.class_preview(np.ones((3, 11))),
        figures.loss_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 2.0}], best_epoch=1),
    ]
    for fig in built:
        spec = fig.to_dict()
        go.Figure(spec)  # raises ValueError on any invalid property
        assert spec["data"]


def test_a_long_class_preview_title_is_set_smaller_not_cut():
    short = figures.class_preview(np.ones((3, 11)), title="PVC (3): 96 beats").layout.title
    long = figures.class_preview(np.ones((3, 11)), title="Normal or bundle branch block (N): 2,237 beats").layout.title
    assert long.text == "Normal or bundle branch block (N): 2,237 beats"  # the whole title, one line
    assert short.font.size == figures.TITLE_SIZE and long.font.size < 0.85 * figures.TITLE_SIZE
