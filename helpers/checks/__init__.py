"""Self-checks the student notebooks call after each TODO.

Each check runs the student's function or model on small inputs and compares it
with values that do not need the lab's reference code (the student release leaves
that out): stored fixtures (``fixtures/*.npz``, written from the reference by
``tests/make_check_fixtures.py``), hand computations on fixed inputs, and properties
(shapes, layer types, parameter counts by formula, the mean and spread of samples,
gradient flow). It either prints ``✅ <check> passed: ...`` or raises
:class:`CheckFailed` (an ``AssertionError``) whose message names the check, the
student's function and the likely mistake with its fix, e.g. ``check_kl failed for
`kl_divergence`: the sign is flipped ...``. In a notebook the failure shows as that
one red line (plus, when the student's own code raised, only the lines of that
code), not as a traceback through ``helpers``. A TODO that still raises
``NotImplementedError`` gives "You have not filled in the TODO yet: ...". A mistake
made upstream is named where it shows: a flipped KL sign is reported as
kl_divergence's by ``check_total_loss`` and ``check_vae_model`` too.

==========================================  =====================================
check                                        the student's object
==========================================  =====================================
``check_preprocess(fn, value_range)``        ``fn(frame uint8 (218, 178, 3))`` ->
``check_preprocess(fn, config=config)``      ``(64, 64, 3) float32``; with config:
                                             ``fn(frame, config)``
``check_pipeline(fn, config)``               ``make_pipeline(images uint8, config,
                                             training)`` -> ``tf.data.Dataset``
``check_sampling(sampling)``                 ``Sampling`` layer (instance or class)
                                             or ``fn(z_mean, z_log_var)``
``check_encoder(encoder, config)``           the whole encoder (model or
                                             ``build_encoder``)
``check_encoder_heads(encoder, config)``     its two heads only
``check_decoder(decoder, config)``           the whole decoder (model or
                                             ``build_decoder``)
``check_decoder_output(decoder, config)``    its output layer only
``check_reconstruction_loss(fn)``            ``fn(images, reconstructions, kind,
                                             value_range)`` -> (B,)
``check_kl(fn)``                             ``fn(z_mean, z_log_var)`` -> (B,)
``check_total_loss(fn)``                     ``fn(images, reconstructions, z_mean,
                                             z_log_var, beta)`` -> scalar or dict
``check_vae_model(VAE)``                     the ``VAE`` class: call, loss in fit,
                                             trackers, saving
``check_train_step(VAE)``                    the student's VAE class: its loss
                                             in evaluate and in a training step
``check_callbacks(callbacks, run_dir,        list of Keras callbacks (and the
config, fixed_z)``                           student's own, driven for epochs)
``check_training_run(run_dir, history)``     a finished run directory
``check_latent_grid(fn)``                    ``fn(vae, n, dims, span)`` -> (n, n,
                                             H, W, 3)
``check_interpolation(fn)``                  ``fn(vae, a, b, steps)`` -> (steps,
                                             H, W, 3)
``check_prior_samples(fn, vae)``             ``fn(vae, n, seed=s)`` -> images or
                                             (images, z)
==========================================  =====================================

One module per notebook (``data``, ``model``, ``loss``, ``training``, ``generation``);
importing this package does not import Keras: each check does, when called.
"""

from helpers.checks._common import CheckFailed
from helpers.checks.data import check_pipeline, check_preprocess
from helpers.checks.generation import (
    check_interpolation,
    check_latent_grid,
    check_prior_samples,
)
from helpers.checks.loss import (
    check_kl,
    check_reconstruction_loss,
    check_total_loss,
    check_vae_model,
)
from helpers.checks.model import (
    check_decoder,
    check_decoder_output,
    check_encoder,
    check_encoder_heads,
    check_sampling,
)
from helpers.checks.training import (
    check_built_vae,
    check_callbacks,
    check_experiment,
    check_precision_step,
    check_train_step,
    check_training_run,
)

__all__ = [
    "CheckFailed",
    "check_preprocess",
    "check_pipeline",
    "check_sampling",
    "check_encoder",
    "check_encoder_heads",
    "check_decoder",
    "check_decoder_output",
    "check_reconstruction_loss",
    "check_kl",
    "check_total_loss",
    "check_vae_model",
    "check_callbacks",
    "check_precision_step",
    "check_train_step",
    "check_training_run",
    "check_built_vae",
    "check_experiment",
    "check_prior_samples",
    "check_latent_grid",
    "check_interpolation",
]
