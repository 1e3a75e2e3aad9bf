"""Self-checks the student notebooks call after each TODO.

Each runs the student's code on small inputs and compares with stored fixtures,
hand computations and properties (none needs the lab's reference code, which the
student release leaves out). It prints ``✅ <check> passed: ...`` or raises
:class:`CheckFailed` naming the check, the student's function and the likely
mistake with its fix. One module per notebook; importing the package does not
import Keras.
"""

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
