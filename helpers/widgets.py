"""Explore a VAE's latent space with sliders, live in a notebook.

Typical use in a notebook::

    from helpers.widgets import LatentExplorer
    explorer = LatentExplorer.from_data(run.vae, val_images, n_components=5,
                                        attributes={"Smiling": smile_vector})
    explorer.show()    # sliders + face + "random face" button; a static grid elsewhere

Each slider moves the latent vector along one direction (a principal direction of
the encoded faces, a raw latent dimension, or an attribute vector) and the face is
decoded again. Where widgets cannot render (no ipywidgets, or not inside a notebook
kernel) ``show`` returns a static matplotlib traversal grid instead.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from helpers.environment import enable_colab_widgets, in_notebook
from helpers.errors import LabError
from helpers.generate import decode, encode_means, latent_dim
from helpers.plots import show_image_rows
from helpers.preprocess import denormalize


def png_bytes(image_uint8: np.ndarray) -> bytes:
    """Encode a (H, W, 3) uint8 image as PNG bytes."""

    buffer = io.BytesIO()
    Image.fromarray(image_uint8).save(buffer, format="PNG")
    return buffer.getvalue()


class LatentExplorer:
    """Sliders over latent directions, redrawing the decoded face as they move.

    Args:
        vae: the trained VAE.
        directions: (K, D) vectors; slider k adds ``value_k * directions[k]``.
        labels: K slider names (default "direction 0", ...).
        center: (D,) latent the sliders start from (default: the origin).
        value_range: pixel range of the decoder (default: ``vae.value_range``).
        slider_range: (low, high) of every slider.
        seed: seeds the "random face" button.
        display_px: width of the displayed face in pixels.
    """

    def __init__(
        self,
        vae,
        directions,
        labels=None,
        center=None,
        value_range=None,
        slider_range=(-3.0, 3.0),
        seed: int = 0,
        display_px: int = 192,
    ):

        self.vae = vae
        dim = latent_dim(vae)
        self.directions = np.atleast_2d(np.asarray(directions, dtype=np.float32))
        if self.directions.shape[1] != dim:
            raise ValueError(
                f"directions have {self.directions.shape[1]} coordinates, "
                f"the latent space has {dim}"
            )
        k = len(self.directions)
        self.labels = (
            list(labels) if labels is not None else [f"direction {i}" for i in range(k)]
        )
        if len(self.labels) != k:
            raise ValueError(f"{len(self.labels)} labels for {k} directions")
        self.center = (
            np.zeros(dim, np.float32)
            if center is None
            else np.asarray(center, np.float32).reshape(dim)
        )
        self.value_range = tuple(value_range or getattr(vae, "value_range", (0.0, 1.0)))
        self.slider_range = tuple(float(v) for v in slider_range)
        self.values = np.zeros(k, np.float32)
        self.display_px = display_px
        self._rng = np.random.default_rng(seed)
        self._sliders, self._image, self._muted = [], None, False

    # Constructors -------------------------------------------------------------------
    @classmethod
    def from_data(cls, vae, images, n_components: int = 5, attributes=None, **kwargs):
        """Sliders over the leading principal directions of the encoded ``images``.

        Each principal slider moves in units of that direction's standard deviation,
        starting from the data's mean latent; attribute sliders add multiples of the
        given vectors (e.g. from ``helpers.generate.attribute_vector``).

        Args:
            vae: the trained VAE.
            images: (N, H, W, 3) faces (N > n_components), or a dataset.
            n_components: number of principal directions.
            attributes: optional {name: (D,) vector}.
            **kwargs: passed to the constructor.
        """
        from sklearn.decomposition import PCA  # slow to import; only this needs it

        z = encode_means(vae, images)
        k = min(n_components, len(z) - 1, z.shape[1])
        if k < 1:
            raise ValueError("from_data needs at least 2 images")
        pca = PCA(n_components=k).fit(z)
        directions = list(pca.components_ * np.sqrt(pca.explained_variance_)[:, None])
        labels = [f"PC {i + 1}" for i in range(k)]
        for name, vector in (attributes or {}).items():
            directions.append(np.asarray(vector, np.float32))
            labels.append(name)
        return cls(vae, np.stack(directions), labels, center=pca.mean_, **kwargs)

    @classmethod
    def from_dims(cls, vae, dims, center=None, **kwargs):
        """Sliders over raw latent coordinates ``dims``, in prior standard units."""

        eye = np.eye(latent_dim(vae), dtype=np.float32)
        return cls(vae, eye[list(dims)], [f"z[{d}]" for d in dims], center, **kwargs)

    # Drawing ------------------------------------------------------------------------
    def latent(self) -> np.ndarray:
        """Return the current latent vector (D,): center + sum of slider moves."""
        return self.center + self.values @ self.directions

    def render(self) -> np.ndarray:
        """Decode the current latent; return the (H, W, 3) uint8 face."""
        return denormalize(decode(self.vae, self.latent()[None])[0], self.value_range)

    def redraw(self) -> np.ndarray:
        """Decode the current latent, update the image widget if built; return it."""
        face = self.render()
        if self._image is not None:
            self._image.value = png_bytes(face)
        return face

    def _on_change(self, change=None) -> None:
        """Slider callback: read every slider's value and redraw."""
        if self._muted:
            return
        if self._sliders:
            self.values = np.array([s.value for s in self._sliders], np.float32)
        self.redraw()

    def random_face(self, _button=None) -> np.ndarray:
        """Start from a new latent drawn from the prior, sliders at 0; redraw."""
        self.center = self._rng.standard_normal(len(self.center)).astype(np.float32)
        self.values[:] = 0
        self._muted = True
        try:
            for slider in self._sliders:
                slider.value = 0.0
        finally:
            self._muted = False
        return self.redraw()

    def widget(self):
        """Build the ipywidgets UI: sliders, the face and a "random face" button.

        Raises:
            LabError: ipywidgets is not installed.
        """
        try:
            import ipywidgets as w
        except ImportError:
            raise LabError(
                "the explorer needs ipywidgets: pip install ipywidgets "
                "(or use .static_figure())"
            ) from None
        low, high = self.slider_range
        self._sliders = [
            w.FloatSlider(
                value=float(v),
                min=low,
                max=high,
                step=0.05,
                description=label,
                continuous_update=True,
            )
            for v, label in zip(self.values, self.labels)
        ]
        for slider in self._sliders:
            slider.observe(self._on_change, names="value")
        self._image = w.Image(format="png", width=self.display_px)
        button = w.Button(description="random face", icon="random")
        button.on_click(self.random_face)
        self.redraw()
        return w.HBox([self._image, w.VBox([*self._sliders, button])])

    def static_figure(self, values=(-2, -1, 0, 1, 2), title="Latent directions"):
        """Return a matplotlib grid: one row per direction at each slider value."""

        values = np.asarray(values, np.float32)
        z = self.center + values[None, :, None] * self.directions[:, None, :]
        images = decode(self.vae, z.reshape(-1, z.shape[-1]))
        rows = list(
            images.reshape(len(self.directions), len(values), *images.shape[1:])
        )
        return show_image_rows(
            rows,
            self.labels,
            self.value_range,
            title=f"{title}: values {', '.join(f'{v:g}' for v in values)}",
        )

    def show(self):
        """Display the widget in a notebook; elsewhere return ``static_figure()``."""
        if in_notebook():
            enable_colab_widgets()  # ipywidgets 8 in Colab needs its widget manager
            try:
                from IPython.display import display

                ui = self.widget()
            except (ImportError, LabError):
                return self.static_figure()
            display(ui)
            return ui
        return self.static_figure()
