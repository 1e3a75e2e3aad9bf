"""Tests for helpers.widgets: the latent explorer's callbacks, without a browser."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from helpers import widgets
from helpers.config import VAEConfig


@pytest.fixture(scope="module")
def vae():
    import keras

    from helpers.student import build_student_vae, solution_module

    keras.utils.set_random_seed(0)
    config = VAEConfig(image_size=16, latent_dim=6, filters=(4, 8, 8))
    return build_student_vae(solution_module(), config)


@pytest.fixture(scope="module")
def faces():
    return np.random.default_rng(0).random((24, 16, 16, 3)).astype(np.float32)


def _png(value: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(value)))


def test_moving_a_slider_redraws_the_image(vae, faces):
    explorer = widgets.LatentExplorer.from_data(
        vae, faces, n_components=3, attributes={"Smiling": np.ones(6)}
    )
    assert explorer.labels == ["PC 1", "PC 2", "PC 3", "Smiling"]
    ui = explorer.widget()
    image = explorer._image
    before = image.value
    assert _png(before).shape == (16, 16, 3)
    np.testing.assert_array_equal(_png(before), explorer.render())
    explorer._sliders[3].value = 3.0  # the observer calls _on_change
    assert image.value != before
    np.testing.assert_allclose(
        explorer.latent(), explorer.center + 3.0 * np.ones(6), atol=1e-6
    )
    assert ui.children[0] is image


def test_callback_without_widgets_and_the_random_face_button(vae, faces):
    explorer = widgets.LatentExplorer.from_dims(vae, [0, 2])
    assert explorer.labels == ["z[0]", "z[2]"]
    origin = explorer.redraw()
    explorer.values[1] = 2.0
    explorer._on_change()
    expected = np.zeros(6, np.float32)
    expected[2] = 2.0
    np.testing.assert_array_equal(explorer.latent(), expected)
    assert not np.array_equal(explorer.redraw(), origin)
    explorer.widget()
    explorer._sliders[0].value = 1.0
    before = explorer._image.value
    face = explorer.random_face()
    assert [s.value for s in explorer._sliders] == [0.0, 0.0]
    assert np.all(explorer.values == 0) and np.any(explorer.center != 0)
    assert explorer._image.value != before
    np.testing.assert_array_equal(_png(explorer._image.value), face)


def test_static_figure_and_show_outside_a_notebook(vae, faces):
    import matplotlib

    matplotlib.use("Agg")
    explorer = widgets.LatentExplorer.from_data(vae, faces, n_components=2)
    assert not widgets.in_notebook()
    fig = explorer.show()  # no kernel here: the static grid
    assert isinstance(fig, matplotlib.figure.Figure)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["PC 1", "PC 2"]
    assert "values -2, -1, 0, 1, 2" in fig.axes[0].get_title()
    matplotlib.pyplot.close(fig)


def test_bad_directions_are_explained(vae):
    with pytest.raises(
        ValueError, match="directions have 4 coordinates, the latent " "space has 6"
    ):
        widgets.LatentExplorer(vae, np.eye(4))
    with pytest.raises(ValueError, match="1 labels for 2 directions"):
        widgets.LatentExplorer(vae, np.eye(6)[:2], labels=["a"])


# Colab: ipywidgets 7.7.1 renders natively, 8.x needs the custom widget manager --
@pytest.fixture
def colab_output(monkeypatch):
    """A stand-in google.colab whose output.enable_custom_widget_manager is counted."""
    import sys
    import types

    from helpers import environment

    calls = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(
        enable_custom_widget_manager=lambda: calls.append("on")
    )
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(environment, "_custom_widget_manager", False)
    return calls


@pytest.mark.parametrize("major, switched", [(7, False), (8, True)])
def test_colab_gets_its_widget_manager_only_for_ipywidgets_8(
    colab_output, monkeypatch, major, switched
):
    from helpers import environment

    monkeypatch.setattr(environment, "ipywidgets_major", lambda: major)
    assert environment.enable_colab_widgets() is switched
    assert environment.enable_colab_widgets() is False  # once per session
    assert colab_output == (["on"] if switched else [])


def test_the_installed_ipywidgets_is_one_the_lab_supports(colab_output, vae):
    """7.x (Colab, the colab-like CI job) or 8.x (the main CI): the UI builds."""
    import ipywidgets

    from helpers import environment

    major = environment.ipywidgets_major()
    assert major == int(ipywidgets.__version__.split(".")[0]) and major in (7, 8)
    environment.enable_colab_widgets()
    assert colab_output == (["on"] if major >= 8 else [])
    explorer = widgets.LatentExplorer.from_dims(vae, [0, 1])
    ui = explorer.widget()
    assert isinstance(ui, ipywidgets.HBox) and len(explorer._sliders) == 2
    explorer._sliders[1].value = 1.5  # observers work the same in 7 and 8
    assert explorer.values[1] == pytest.approx(1.5)


def test_outside_colab_nothing_is_switched(monkeypatch):
    import sys

    from helpers import environment

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setattr(environment, "_custom_widget_manager", False)
    monkeypatch.setattr(environment, "ipywidgets_major", lambda: 8)
    assert environment.enable_colab_widgets() is False


def test_a_progress_bar_works_with_this_ipywidgets():
    from helpers.progress import progress

    with progress(total=3, desc="test", disable=False) as bar:
        bar.update(3)
    assert bar.n == 3
