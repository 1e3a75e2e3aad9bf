"""04/05 self-checks: pass on correct code, name the typical mistake otherwise."""

from __future__ import annotations

import functools
import types
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers import checks, student
from helpers.checks import CheckFailed
from helpers.config import preset
from instructor import export_cells

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
CONFIG = preset("smoke", latent_dim=4, filters=(4, 4, 4), image_size=32)
TODO = "You have not filled in the TODO yet"


def todo(*args, **kwargs):
    raise NotImplementedError()


def fails(check, *args, match, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


@functools.cache
def cells() -> dict[str, str]:
    """{part: source} of the solutions' %%export cells, as a student exports them."""
    return export_cells.completed_parts(SOLUTIONS)


def part(name: str, *edits) -> types.ModuleType:
    """Run a solution part (after the assembled module's header), with edits."""
    source = cells()[name]
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new)
    module = types.ModuleType(f"solution_{name}")
    exec(student.HEADER, module.__dict__)
    if name == "vae_model":
        exec(cells()["sampling"], module.__dict__)
        exec(cells()["losses"], module.__dict__)
    exec(source, module.__dict__)
    return module


# ---------------------------------------------------------------------- train step
def test_train_step_passes_students_and_labs_vae(capsys):
    VAE = student.solution_module().VAE  # the lab's, from the solutions' cells

    checks.check_train_step(part("vae_model").VAE)
    checks.check_train_step(VAE)
    assert capsys.readouterr().out.count("✅ check_train_step passed") == 2
    fails(checks.check_train_step, todo, match=TODO)


@pytest.mark.parametrize(
    "edit, hint",
    [
        (
            ('total = losses["total"]', 'total = losses["reconstruction"]'),
            "forgets the KL",
        ),
        (
            ("            self.kl_weight,\n", "            1.0,\n"),
            "ignores beta",
        ),
        (
            (
                'self.kl_tracker.update_state(losses["kl"], sample_weight=images)',
                "pass",
            ),
            "kl_loss reports 0",
        ),
        (
            (
                'self.kl_tracker.update_state(losses["kl"], sample_weight=images)',
                'self.kl_tracker.update_state(losses["kl"])',
            ),
            "weigh each batch by its size",
        ),
        (
            ('@keras.saving.register_keras_serializable(package="student")\n', ""),
            "is not registered, so a saved .keras file cannot be reloaded",
        ),
    ],
)
def test_train_step_names_the_mistake(edit, hint):
    fails(checks.check_train_step, part("vae_model", edit).VAE, match=hint)


def test_train_step_that_forgets_the_kl_in_a_custom_train_step():
    import tensorflow as tf

    base = part("vae_model").VAE

    class NoKL(base):
        def train_step(self, data):
            data = data[0] if isinstance(data, tuple) else data
            with tf.GradientTape() as tape:
                out = self(data, training=True)
                loss = tf.reduce_mean(
                    tf.reduce_sum((data - out["reconstruction"]) ** 2, [1, 2, 3])
                )
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss}

    fails(checks.check_train_step, NoKL, match="forgets the KL")


# ----------------------------------------------------------------------- callbacks
def fixed_z():
    return np.random.default_rng(0).standard_normal((6, 4)).astype("float32")


def test_callbacks_pass_and_the_grid_is_driven(tmp_path, capsys):
    config, z = CONFIG.replace(sample_interval=3), fixed_z()
    make = part("callbacks").make_callbacks
    checks.check_callbacks(lambda: make(config, tmp_path, z), tmp_path, config, z)
    assert "FaceGrid decodes the fixed z every 3 epochs" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "epoch_003.png",
        "epoch_006.png",
    ]
    fails(checks.check_callbacks, todo, tmp_path, match=TODO)


@pytest.mark.parametrize(
    "edit, hint",
    [
        (
            (
                "self.model.decoder(self.fixed_z,",
                "self.model.decoder(keras.random.normal(ops.shape(self.fixed_z)),",
            ),
            "draws a new z every time",
        ),
        (("if (epoch + 1) % self.interval:", "if False:"), "decodes every epoch"),
        (
            ("if (epoch + 1) % self.interval:", "if epoch % self.interval:"),
            "counts epochs from 0",
        ),
        (
            ('self.folder / f"epoch_', 'Path("/tmp") / "no" / f"epoch_'),
            "wrote 0 PNGs into run_dir/samples",
        ),
        (
            ('monitor="val_loss_at_target_beta"', 'monitor="val_loss"'),
            "use monitor='val_loss_at_target_beta'.*smallest in a warm-up epoch",
        ),
        (
            ('monitor="val_loss_at_target_beta"', 'monitor="loss"'),
            "use monitor='val_loss_at_target_beta'.*not measured on held-out",
        ),
        (('mode="min"', 'mode="max"'), "use mode='min'"),
        (
            ('keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),', ""),
            "missing TensorBoard",
        ),
    ],
)
def test_callbacks_name_the_mistake(tmp_path, edit, hint):
    config, z = CONFIG.replace(sample_interval=3), fixed_z()
    make = part("callbacks", edit).make_callbacks
    fails(
        checks.check_callbacks,
        lambda: make(config, tmp_path, z),
        tmp_path,
        config,
        z,
        match=hint,
    )


def test_callbacks_want_one_of_the_students_own(tmp_path):
    """The lab's callbacks (vaelab.solution's) handed in as yours are refused."""
    make_callbacks = student.solution_module().make_callbacks

    z = fixed_z()
    fails(
        checks.check_callbacks,
        make_callbacks(CONFIG, tmp_path, z),
        tmp_path,
        match="missing your own callback.*FaceGrid is the lab's",
    )


# ---------------------------------------------------------------- 05: grid and path
def grid(vae, n, dims=(0, 1), span=2.0):
    values = np.linspace(-span, span, n)
    rows, cols = np.meshgrid(values, values, indexing="ij")
    z = np.zeros((n * n, vae.decoder.inputs[0].shape[-1]), "float32")
    z[:, dims[0]], z[:, dims[1]] = rows.ravel(), cols.ravel()
    images = keras.ops.convert_to_numpy(vae.decoder(z))
    return images.reshape(n, n, *images.shape[1:])


def test_latent_grid(capsys):
    checks.check_latent_grid(grid)
    assert "✅ check_latent_grid passed" in capsys.readouterr().out
    fails(checks.check_latent_grid, todo, match=TODO)
    fails(
        checks.check_latent_grid,
        lambda vae, n, dims, span: grid(vae, n, (0, 1), span),
        match="the coordinates outside `dims` are not 0",
    )
    fails(
        checks.check_latent_grid,
        lambda vae, n, dims, span: grid(vae, n, dims, 2.0),
        match="use the span argument",
    )
    fails(
        checks.check_latent_grid,
        lambda vae, n, dims, span: grid(vae, n, dims[::-1], span),
        match="rows and columns are swapped",
    )


def path(vae, a, b, steps, ends=True, sample=False):
    z_mean, z_log_var = vae.encoder(np.stack([a, b]))
    z_mean = np.asarray(z_mean)
    if sample:
        z_mean = z_mean + np.random.default_rng().normal(size=z_mean.shape)
    t = np.linspace(0, 1, steps) if ends else np.linspace(0, 1, steps + 2)[1:-1]
    z = (1 - t)[:, None] * z_mean[0] + t[:, None] * z_mean[1]
    return vae.decoder(z.astype("float32"))


def test_interpolation(capsys):
    checks.check_interpolation(path)
    assert "✅ check_interpolation passed" in capsys.readouterr().out
    fails(checks.check_interpolation, todo, match=TODO)
    fails(
        checks.check_interpolation,
        lambda *a: path(*a, ends=False),
        match="include both ends",
    )
    fails(
        checks.check_interpolation,
        lambda *a: path(*a, sample=True),
        match="use z_mean itself, not a sample",
    )
    fails(
        checks.check_interpolation,
        lambda vae, a, b, steps: path(vae, a, b, steps)[::-1],
        match="the path runs from b to a",
    )


# ------------------------------------------------------- 04: the built VAE, the run
def test_built_vae(capsys):
    parts = types.SimpleNamespace(module=part("vae_model"))
    module = parts.module
    exec(cells()["encoder"] + "\n" + cells()["decoder"], module.__dict__)

    def build(parts, config, **changes):
        m = parts.module
        settings = (
            dict(
                beta=config.beta,
                reconstruction=config.reconstruction_loss,
                value_range=config.value_range,
            )
            | changes
        )
        vae = m.VAE(m.build_encoder(config), m.build_decoder(config), **settings)
        vae.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        return vae

    checks.check_built_vae(build, parts, CONFIG)
    assert "✅ check_built_vae passed" in capsys.readouterr().out
    fails(checks.check_built_vae, todo, parts, CONFIG, match=TODO)
    fails(
        checks.check_built_vae,
        lambda p, c: build(p, c, beta=1.5),
        parts,
        CONFIG,
        match="pass beta=config.beta",
    )

    def uncompiled(p, c):
        m = p.module
        return m.VAE(m.build_encoder(c), m.build_decoder(c), beta=c.beta)

    fails(checks.check_built_vae, uncompiled, parts, CONFIG, match="not compiled")


def test_experiment(capsys):
    base = CONFIG

    def good(b):
        return {
            "mse": b.replace(reconstruction_loss="mse"),
            "bce": b.replace(reconstruction_loss="bce"),
        }

    checks.check_experiment(good, base)
    assert "vary reconstruction_loss ('mse', 'bce')" in capsys.readouterr().out
    fails(checks.check_experiment, todo, base, match=TODO)
    fails(
        checks.check_experiment,
        {"a": base.replace(beta=2.0, latent_dim=8), "b": base},
        base,
        match="differ in beta, latent_dim",
    )
    fails(checks.check_experiment, {"a": base}, base, match="at least two runs")
    fails(
        checks.check_experiment,
        {"a": base.replace(seed=1, beta=2.0), "b": base.replace(seed=1)},
        base,
        match="every run also changes seed",
    )


def test_training_run(tmp_path, capsys):
    from helpers.runs import RunPaths

    paths = RunPaths(tmp_path)
    CONFIG.replace(sample_interval=1).save(paths.config)
    paths.history.write_text(
        "epoch,kl_loss,loss,reconstruction_loss,val_loss\n0,2.0,12.0,10.0,13.0\n"
    )
    fails(checks.check_training_run, tmp_path, match="best.keras is missing")
    paths.best_model.write_bytes(b"x")
    fails(checks.check_training_run, tmp_path, match="no sample grid")
    paths.samples.mkdir()
    (paths.samples / "epoch_001.png").write_bytes(b"x")
    checks.check_training_run(tmp_path)
    assert "✅ check_training_run passed: 1 epochs" in capsys.readouterr().out
    paths.history.write_text(
        "epoch,kl_loss,loss,reconstruction_loss,val_loss\n0,-2.0,8.0,10.0,9.0\n"
    )
    fails(checks.check_training_run, tmp_path, match="posterior collapsed")


# --------------------------------------------------------- estimates, the model
def test_run_time_comes_from_helpers_timing_with_the_runs_counts(monkeypatch):
    import helpers.cache
    import helpers.timing
    from helpers import pretrained

    counts = {"counts": {"train": 1000, "validation": 300}}
    monkeypatch.setattr(helpers.cache, "cache_info", lambda cache_dir: counts)
    seen = {}

    def describe(config, **kwargs):
        seen.update(kwargs)
        return "one sentence"

    monkeypatch.setattr(helpers.timing, "describe_training_time", describe)
    config = CONFIG.replace(train_limit=400, val_limit=500)
    assert pretrained.describe_run_time(config, "cache", epochs=3) == "one sentence"
    assert seen == {"n_images": 400, "n_validation": 300, "epochs": 3}
    # one estimator: the FLOP-rate copy that lived here is gone
    assert not hasattr(pretrained, "training_seconds")


def test_instructor_model_needs_a_hash_then_checks_it(tmp_path):
    import hashlib

    from helpers.errors import LabError
    from helpers.pretrained import fetch_instructor_model

    with pytest.raises(LabError, match="has not published"):
        fetch_instructor_model(tmp_path / "run", CONFIG, sha256="")
    source = tmp_path / "model.keras"
    source.write_bytes(b"pretend model")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    url = source.as_uri()
    path = fetch_instructor_model(tmp_path / "run", CONFIG, url=url, sha256=digest)
    # Under a name of its own: never taken for the student's checkpoint.
    assert path == tmp_path / "run" / "instructor.keras"
    assert path.read_bytes() == b"pretend model"
    assert not (tmp_path / "run" / "best.keras").exists()
    assert (tmp_path / "run" / "config.json").exists()
    with pytest.raises(LabError, match="could not fetch"):
        fetch_instructor_model(tmp_path / "other", CONFIG, url=url, sha256="0" * 64)
    assert not (tmp_path / "other" / "instructor.keras").exists()
    # Loading it checks that it is a portable model (tests/test_pretrained.py).
    from helpers.runs import load_run

    with pytest.raises(LabError, match="damaged"):
        load_run(tmp_path / "run")


def test_checks_run_without_the_reference_modules(tmp_path, monkeypatch, capsys):
    """The student release ships no reference parts: these checks must not need it
    (nor the lab's callbacks and preprocessing)."""
    import sys

    for name in (
        "helpers.solution",
        "vaelab.solution",
        "helpers.callbacks",
        "helpers.preprocess",
    ):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now fails
    config, z = CONFIG.replace(sample_interval=2), fixed_z()
    make = part("callbacks").make_callbacks
    checks.check_callbacks(lambda: make(config, tmp_path, z), tmp_path, config, z)
    checks.check_train_step(part("vae_model").VAE)
    checks.check_latent_grid(grid)
    checks.check_interpolation(path)
    assert capsys.readouterr().out.count("✅") == 4


# ------------------------------------------------- issue 19: the gaps the tester found
ENCODER_ACT = 'layers.LeakyReLU(negative_slope=0.2, name=f"conv{i}_act")(x)'
DECODER_ACT = 'layers.LeakyReLU(negative_slope=0.2, name=f"up{i}_act")(x)'
PROJECT_ACT = 'layers.LeakyReLU(negative_slope=0.2, name="project_act")(x)'


@pytest.mark.parametrize(
    "name, check, edit, match",
    [
        ("encoder", "check_encoder", (ENCODER_ACT, 'layers.ReLU(name=f"conv{i}_act")(x)'),
         "convolution 1 \\(conv1\\) is followed by a ReLU layer, not LeakyReLU"),
        ("encoder", "check_encoder",
         (ENCODER_ACT, 'layers.LeakyReLU(negative_slope=0.1, name=f"conv{i}_act")(x)'),
         "LeakyReLU with negative_slope=0.1"),
        ("encoder", "check_encoder", (ENCODER_ACT, 'layers.Activation("elu")(x)'),
         "followed by a Activation layer \\(elu\\)"),
        ("decoder", "check_decoder", (DECODER_ACT, 'layers.ReLU(name=f"up{i}_act")(x)'),
         "up-sampling layer 1 \\(up1\\) is followed by a ReLU layer"),
        ("decoder", "check_decoder", (PROJECT_ACT, 'layers.ReLU(name="project_act")(x)'),
         "the Dense layer \\(project\\) is followed by a ReLU layer"),
    ],
)
def test_the_design_s_leaky_relu_is_checked(name, check, edit, match):
    """ReLU passed as "3 strided Conv2D + LeakyReLU"; the slope the table names is
    checked too."""
    config = preset("smoke")
    build = getattr(part(name, edit), f"build_{name}")
    fails(getattr(checks, check), build, config, match=match)
    getattr(checks, check)(getattr(part(name), f"build_{name}"), config)


def test_activation_leaky_relu_on_the_layer_passes(capsys):
    edit = (ENCODER_ACT, 'layers.Activation("leaky_relu")(x)')
    checks.check_encoder(part("encoder", edit).build_encoder, preset("smoke"))
    assert "✅ check_encoder passed" in capsys.readouterr().out


def test_a_half_kl_is_not_called_averaging_over_the_latent_dimensions():
    """With the 2-d latent of check_vae_model, 0.5 x KL equals "averaged over the
    latent dimensions": the message must not name either cause."""
    module = part("vae_model")
    module.kl_divergence = (lambda f: lambda m, v: 0.5 * f(m, v))(module.kl_divergence)
    with pytest.raises(CheckFailed) as caught:
        checks.check_vae_model(module.VAE)
    assert "because of kl_divergence (it is 0.5 times" in str(caught.value)
    assert "averaged" not in str(caught.value)


def _export_solutions(workdir, edits=None):
    for name, source in cells().items():
        for old, new in (edits or {}).get(name, ()):
            assert old in source, old
            source = source.replace(old, new)
        student.export_source(name, source, workdir)


def test_a_cascade_names_its_first_broken_part_only(tmp_path, capsys):
    """A wrong KL fails losses; vae_model (which uses it) is "not judged", so the
    table and the advice name losses alone."""
    _export_solutions(tmp_path, {"losses": [("per_dim = -0.5 *", "per_dim = -0.25 *")]})
    parts = student.load_student_parts(tmp_path, config=preset("smoke"),
                                       parts=["sampling", "losses", "vae_model"])
    out = capsys.readouterr().out
    assert parts.failed == ["losses"]
    assert "check_kl failed for `kl_divergence`" in out
    assert "not judged: it uses your losses, whose check fails" in out
    assert "USE_LAB_PART['vae_model']" not in out


def test_untouched_cells_end_in_one_line():
    """A TODO stub, a name an earlier cell never defined and a LabError show one
    line in the notebook (helpers.errors.register_short_errors); other errors
    keep their traceback."""
    from helpers.errors import LabError, short_error_lines

    import linecache

    namespace, cell = {}, "def build_encoder(config):\n    raise NotImplementedError()\n"
    linecache.cache["<cell 1>"] = (len(cell), None, cell.splitlines(True), "<cell 1>")
    exec(compile(cell, "<cell 1>", "exec"), namespace)  # as IPython caches a cell
    for raiser, match in (
        (lambda: namespace["build_encoder"](None), "The TODO in `build_encoder` is not done"),
        (lambda: exec("parts.VAE", {}), "NameError: name 'parts' is not defined. A cell"),
        (lambda: (_ for _ in ()).throw(LabError("cannot assemble your model")),
         "cannot assemble your model"),
    ):
        try:
            raiser()
        except Exception as error:
            lines = short_error_lines(error)
        assert lines is not None and len(lines) == 1 and match in lines[0], lines
    try:
        raise NotImplementedError("a library's own")
    except NotImplementedError as error:
        assert short_error_lines(error) is None
    cell = "rows = sorted(by_name[n] for n in (1, 2))\n"  # inside a generator
    try:
        exec(compile(cell, "<cell 2>", "exec"), {})
    except NameError as error:
        assert "A cell above has not run" in short_error_lines(error)[0]
    ipython7 = compile("parts.VAE\n", "<cell 4>", "exec").replace(co_name="<cell line: 0>")
    try:  # IPython 7 (Colab's) names a cell's code "<cell line: N>", not "<module>"
        exec(ipython7, {})
    except NameError as error:
        assert "A cell above has not run" in short_error_lines(error)[0]
    try:  # a NameError inside a function the cell calls: a bug, keep the traceback
        exec(compile("def f():\n    return missing\n", "<lib>", "exec"), namespace)
        exec(compile("f()\n", "<cell 3>", "exec"), namespace)
    except NameError as error:
        assert short_error_lines(error) is None


# ------------------------------- issue 19: the benchmark's misses (student_mistakes.py)
def _build_my_vae(edit=None):
    """The solution's build_my_vae (with one edit) over the solution's parts."""
    module = part("vae_model")
    exec(cells()["encoder"] + "\n" + cells()["decoder"], module.__dict__)
    source = cells()["build_my_vae"]
    if edit:
        assert edit[0] in source, edit[0]
        source = source.replace(*edit)
    exec(source, module.__dict__)
    return module.build_my_vae, types.SimpleNamespace(**vars(module))


@pytest.mark.parametrize(
    "edit, match",
    [
        (("beta=config.beta,", "beta=1.0,"),
         "beta is 1.0, the config's is 2.5 \\(given a config with beta=2.5\\): "
         "pass beta=config.beta"),
        (("reconstruction=config.reconstruction_loss,", ""),
         "reconstruction is 'mse', the config's is 'bce'.*"
         "pass reconstruction=config.reconstruction_loss"),
        (("value_range=config.value_range,", ""),
         "value_range is \\(0.0, 1.0\\), the config's is \\(-1.0, 1.0\\).*"
         "pass value_range=config.value_range"),
    ],
)
def test_built_vae_takes_each_setting_from_the_config(edit, match):
    """With the smoke config's beta 1, "mse" and [0, 1] (the VAE's defaults) a
    hard-coded or forgotten setting passed: the check builds with other values too."""
    build, parts = _build_my_vae(edit)
    fails(checks.check_built_vae, build, parts, CONFIG, match=match)


def test_built_vae_passes_the_solution(capsys):
    build, parts = _build_my_vae()
    checks.check_built_vae(build, parts, CONFIG)
    assert "✅ check_built_vae passed" in capsys.readouterr().out


def test_the_decoder_s_output_activation_comes_from_the_config():
    """A hard-coded sigmoid passed 02's check (run with a sigmoid config only) and
    broke every tanh run: the check builds the decoder for the other range too."""
    edit = ("activation=config.output_activation,", 'activation="sigmoid",')
    fails(checks.check_decoder, part("decoder", edit).build_decoder, preset("smoke"),
          match="with config.output_activation='tanh' the last layer's activation is "
          "sigmoid: use activation=config.output_activation")
    checks.check_decoder(part("decoder").build_decoder, preset("smoke"))


@pytest.mark.parametrize(
    "edit, match",
    [
        (("            self.reconstruction,\n            self.value_range,\n", ""),
         "built with reconstruction='bce' the reconstruction_loss tracker reads .*"
         "pass the model's self.reconstruction on to vae_loss"),
        (("            self.value_range,\n", ""),
         "built with value_range=\\(-1.0, 1.0\\) the reconstruction_loss tracker .*"
         "pass the model's self.value_range on to vae_loss"),
    ],
)
def test_the_vae_passes_its_reconstruction_settings_to_the_loss(edit, match):
    """check_vae_model built the VAE with "mse" on [0, 1] only, vae_loss's defaults:
    a compute_loss that left them out passed, and a BCE or [-1, 1] run trained on
    MSE or on the wrong scale."""
    fails(checks.check_vae_model, part("vae_model", edit).VAE, match=match)


def test_the_face_grid_uses_its_value_range(tmp_path):
    """save_grid without value_range passed (the notebook's config is [0, 1],
    save_grid's default); a tanh run's grids were then clipped."""
    config, z = CONFIG.replace(sample_interval=3), fixed_z()
    make = part("callbacks", (", value_range=self.value_range)", ")")).make_callbacks
    fails(checks.check_callbacks, lambda: make(config, tmp_path, z), tmp_path, config, z,
          match="FaceGrid's grids ignore its value_range: with value_range=\\(-1.0, 1.0\\)"
          ".*save_grid\\(..., value_range=self.value_range\\)")
    good = part("callbacks").make_callbacks
    checks.check_callbacks(lambda: good(config, tmp_path, z), tmp_path, config, z)
