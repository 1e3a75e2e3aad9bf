"""Self-checks the student notebooks call after each TODO.

Each check runs the student's function or model on small inputs, compares it with
the lab's reference (``helpers.preprocess``, ``helpers.model``, ``helpers.losses``)
and either prints ``✅ <check> passed: ...`` or raises :class:`CheckFailed` (an
``AssertionError``) whose message names the likely mistake and the fix. A TODO that
still raises ``NotImplementedError`` gives "You have not filled in the TODO yet: ...".

==========================================  =====================================
check                                        the student's object
==========================================  =====================================
``check_preprocess(fn, value_range)``        ``fn(frame uint8 (218, 178, 3))`` ->
                                             ``(64, 64, 3) float32``
``check_sampling(sampling)``                 ``Sampling`` layer (instance or class)
                                             or ``fn(z_mean, z_log_var)``
``check_encoder_heads(encoder, config)``     encoder model or ``build(config)``
``check_decoder_output(decoder, config)``    decoder model or ``build(config)``
``check_kl(fn)``                             ``fn(z_mean, z_log_var)`` -> (B,)
``check_total_loss(fn)``                     ``fn(images, reconstructions, z_mean,
                                             z_log_var, beta)`` -> scalar or dict
``check_callbacks(callbacks, run_dir)``      list of Keras callbacks
``check_prior_samples(fn, vae)``             ``fn(vae, n, seed=s)`` -> images or
                                             (images, z)
==========================================  =====================================

One module per notebook (``data``, ``model``, ``loss``, ``training``, ``generation``);
importing this package does not import Keras: each check does, when called.
"""

from helpers.checks._common import CheckFailed
from helpers.checks.data import check_preprocess
from helpers.checks.generation import check_prior_samples
from helpers.checks.loss import check_kl, check_total_loss
from helpers.checks.model import (
    check_decoder_output,
    check_encoder_heads,
    check_sampling,
)
from helpers.checks.training import check_callbacks

__all__ = [
    "CheckFailed",
    "check_preprocess",
    "check_sampling",
    "check_encoder_heads",
    "check_decoder_output",
    "check_kl",
    "check_total_loss",
    "check_callbacks",
    "check_prior_samples",
]
