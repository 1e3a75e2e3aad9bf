"""No autograded point is one call into the shipped package away.

Every part's self-check (the autograded test cells call the same checks) refuses a
part that is, or calls, the lab's own code: its scaffolding, its checks'
references, its plotting of generated faces. The lab's code stays readable, but it
is not an answer to hand in.
"""

from __future__ import annotations

import types

import pytest

import helpers
from helpers import checks, student
from helpers.checks import CheckFailed
from helpers.checks._common import lab_calls
from helpers.config import VAEConfig

TINY = VAEConfig(latent_dim=4, filters=(4, 4, 4), image_size=32)


def _namespace(**replaced) -> dict:
    """The reference parts' namespace with some names replaced by borrowed ones."""
    return {**vars(student.solution_module()), **replaced}


def _borrowing():
    """(part, the name it defines, a one-line implementation that borrows)."""
    from helpers import callbacks, generate, preprocess, training
    from helpers.checks import loss as loss_checks

    def crop_resize_normalize(frame, config):
        return preprocess.normalize(preprocess.load_image(frame), config.value_range)

    def make_pipeline(images, config, training_):
        return training._datasets(config, images, student.solution_module())[0]

    def kl_divergence(z_mean, z_log_var):
        return loss_checks._kl_each(z_mean, z_log_var)

    def reconstruction_loss(images, reconstructions, kind="mse", value_range=(0, 1)):
        return loss_checks._rec_each(images, reconstructions, kind, value_range)

    def build_my_vae(parts, config):
        return student.build_student_vae(parts, config)

    def make_callbacks(config, run_dir, fixed_z):
        return training._given_callbacks(None, config, run_dir, fixed_z)

    def sample_faces(vae, n, seed=0):
        return generate.sample_in_batches(None, vae, n, seed)

    def interpolate_faces(vae, image_a, image_b, steps=8):
        return generate.slerp_faces(vae, image_a, image_b, steps)

    def latent_grid(vae, n=9, dims=(0, 1), span=2.0):
        return generate.latent_grid_2d(vae, n)

    class VAE(student.solution_module().VAE):  # the reference, with a lab call
        def train_step(self, data):
            callbacks.seed_state_variables(self)
            return super().train_step(data)

    return [
        ("preprocess", "crop_resize_normalize", crop_resize_normalize),
        ("pipeline", "make_pipeline", make_pipeline),
        ("losses", "kl_divergence", kl_divergence),
        ("losses", "reconstruction_loss", reconstruction_loss),
        ("build_my_vae", "build_my_vae", build_my_vae),
        ("callbacks", "make_callbacks", make_callbacks),
        ("sample_faces", "sample_faces", sample_faces),
        ("interpolate_faces", "interpolate_faces", interpolate_faces),
        ("latent_grid", "latent_grid", latent_grid),
        ("vae_model", "VAE", VAE),
        # Aliases: the lab's own function handed in as the part.
        ("build_my_vae", "build_my_vae", student.build_student_vae),
        ("interpolate_faces", "interpolate_faces", generate.slerp_faces),
        ("latent_grid", "latent_grid", generate.latent_grid_2d),
    ]


BORROWING = _borrowing()


@pytest.mark.parametrize(
    "part, name, borrowed", BORROWING, ids=[f"{p}-{b.__name__}" for p, _, b in BORROWING]
)
def test_a_part_that_calls_the_lab_gets_no_points(part, name, borrowed, tmp_path):
    namespace = _namespace(**{name: borrowed})
    with pytest.raises(CheckFailed, match="calls the lab's own helpers"):
        student.PART_REGISTRY[part].check(namespace, TINY)


def test_the_public_checks_refuse_it_too():
    from helpers.checks import loss as loss_checks

    def kl_divergence(z_mean, z_log_var):
        return loss_checks._kl_each(z_mean, z_log_var)

    with pytest.raises(CheckFailed, match=r"check_kl failed .*helpers\.checks\.loss"):
        checks.check_kl(kl_divergence)

    def inside(z_mean, z_log_var):
        import helpers.checks.loss

        return helpers.checks.loss._kl_each(z_mean, z_log_var)

    with pytest.raises(CheckFailed, match="calls the lab's own"):
        checks.check_kl(inside)


@pytest.mark.parametrize("part", list(student.PART_REGISTRY))
def test_the_reference_parts_borrow_nothing(part):
    module = student.solution_module()
    for name in student.PART_NAMES[part]:
        assert lab_calls(getattr(module, name)) == [], (part, name)


def test_what_a_part_may_use():
    """The config it is given, numpy and keras, and the plotting helper."""
    from helpers.config import VAEConfig as Config
    from helpers.plots import save_grid

    def fine(config):
        save_grid([], "x.png")
        return Config(latent_dim=config.latent_dim)

    assert lab_calls(fine) == []
    assert lab_calls(types.SimpleNamespace) == []
    assert lab_calls(helpers.generate.slerp) == ["helpers.generate.slerp"]
