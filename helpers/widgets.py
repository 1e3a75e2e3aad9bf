"""Explore a VAE's latent space with notebook sliders, or a static matplotlib grid."""

from __future__ import annotations

import numpy as np

from helpers.environment import enable_colab_widgets, in_notebook
from helpers.errors import LabError
from helpers.generate import decode, encode_means, latent_dim
from helpers.plots import png_bytes, show_image_rows
from helpers.preprocess import denormalize


class LatentExplorer:
    """Sliders over latent directions, redrawing the decoded face as they move:
    slider k adds ``value_k * directions[k]`` ((K, D)) to ``center`` (default 0)."""

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
        self.vae, dim = vae, latent_dim(vae)
        self.directions = np.atleast_2d(np.asarray(directions, dtype=np.float32))
        k = len(self.directions)
        if self.directions.shape[1] != dim:
            raise ValueError(
                f"directions have {self.directions.shape[1]} coordinates, "
                f"the latent space has {dim}"
            )
        self.labels = list(labels or (f"direction {i}" for i in range(k)))
        if len(self.labels) != k:
            raise ValueError(f"{len(self.labels)} labels for {k} directions")
        center = np.zeros(dim) if center is None else center
        self.center = np.asarray(center, np.float32).reshape(dim)
        self.value_range = tuple(value_range or getattr(vae, "value_range", (0.0, 1.0)))
        self.slider_range = tuple(float(v) for v in slider_range)
        self.values, self.display_px = np.zeros(k, np.float32), display_px
        self._rng = np.random.default_rng(seed)
        self._sliders, self._image, self._muted = [], None, False

    @classmethod
    def from_data(cls, vae, images, n_components: int = 5, attributes=None, **kwargs):
        """Sliders on the encoded ``images``' PCA axes (in std) and ``attributes``."""
        from sklearn.decomposition import PCA  # slow to import; only this needs it

        z = encode_means(vae, images)
        k = min(n_components, len(z) - 1, z.shape[1])
        if k < 1:
            raise ValueError("from_data needs at least 2 images")
        pca = PCA(n_components=k).fit(z)
        directions = list(pca.components_ * np.sqrt(pca.explained_variance_)[:, None])
        directions += [np.asarray(v, np.float32) for v in (attributes or {}).values()]
        labels = [f"PC {i + 1}" for i in range(k)] + list(attributes or {})
        return cls(vae, np.stack(directions), labels, center=pca.mean_, **kwargs)

    @classmethod
    def from_dims(cls, vae, dims, center=None, **kwargs):
        """Sliders over raw latent coordinates ``dims``, in prior standard units."""
        eye = np.eye(latent_dim(vae), dtype=np.float32)
        return cls(vae, eye[list(dims)], [f"z[{d}]" for d in dims], center, **kwargs)

    def latent(self) -> np.ndarray:
        """Return the current latent vector (D,): center + sum of slider moves."""
        return self.center + self.values @ self.directions

    def render(self) -> np.ndarray:
        """Decode the current latent; return the (H, W, 3) uint8 face."""
        return denormalize(decode(self.vae, self.latent()), self.value_range)

    def redraw(self) -> np.ndarray:
        """Decode the current latent, update the image widget if built; return it."""
        face = self.render()
        if self._image is not None:
            self._image.value = png_bytes(face)
        return face

    def _on_change(self, change=None) -> None:
        if not self._muted:
            if self._sliders:
                self.values = np.array([s.value for s in self._sliders], np.float32)
            self.redraw()

    def random_face(self, _button=None) -> np.ndarray:
        """Start from a new latent drawn from the prior, sliders at 0; redraw."""
        self.center = self._rng.standard_normal(len(self.center)).astype(np.float32)
        self.values[:], self._muted = 0, True
        try:
            for slider in self._sliders:
                slider.value = 0.0
        finally:
            self._muted = False
        return self.redraw()

    def widget(self):
        """Build the ipywidgets UI: sliders, the face and a "random face" button."""
        try:
            import ipywidgets as w
        except ImportError:
            raise LabError(
                "the explorer needs ipywidgets: pip install ipywidgets "
                "(or use .static_figure())"
            ) from None
        low, high = self.slider_range
        self._sliders = [
            w.FloatSlider(value=float(v), min=low, max=high, step=0.05, description=t)
            for v, t in zip(self.values, self.labels)
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
        rows = decode(self.vae, z)
        title = f"{title}: values {', '.join(f'{v:g}' for v in values)}"
        return show_image_rows(list(rows), self.labels, self.value_range, title=title)

    def show(self):
        """Display the widget in a notebook; elsewhere return ``static_figure()``."""
        if not in_notebook():
            return self.static_figure()
        enable_colab_widgets()  # ipywidgets 8 in Colab needs its widget manager
        try:
            from IPython.display import display

            ui = self.widget()
        except (ImportError, LabError):
            return self.static_figure()
        display(ui)
        return ui
