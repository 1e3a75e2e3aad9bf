"""Self-checks the notebooks call after each TODO: each runs the student's code on
small inputs and prints ``✅ <check> passed`` or raises :class:`CheckFailed`."""

from helpers.checks._common import CheckFailed
from helpers.checks.data import check_pipeline, check_preprocess
from helpers.checks.generation import check_interpolation, check_latent_grid
from helpers.checks.generation import check_prior_samples
from helpers.checks.loss import check_kl, check_reconstruction_loss
from helpers.checks.loss import check_total_loss, check_vae_model
from helpers.checks.model import check_decoder, check_decoder_output, check_encoder
from helpers.checks.model import check_encoder_heads, check_sampling
from helpers.checks.training import check_built_vae, check_callbacks
from helpers.checks.training import check_experiment, check_precision_step
from helpers.checks.training import check_train_step, check_training_run

__all__ = ["CheckFailed"] + sorted(n for n in dir() if n.startswith("check_"))
