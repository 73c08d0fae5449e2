"""Regenerate the small sample model files in this directory.

Run from the repository root:

    python sample_models/build.py           # (re)write every sample file
    python sample_models/build.py --check   # load every file back and report

Keras 3 (``import keras``) writes most files; ``tf_keras`` (Keras 2) writes
the ``k2_*`` ones. The two are never mixed inside one model. Every builder
resets the session and the seeds, and names every layer and input
explicitly, so the weights, layer names and graph structure do not depend on
build order. Container files are not byte-identical between runs: ``.keras``
archives record a save date and zip timestamps.

Layer sizes are tiny on purpose: every file must stay well under 200 KB.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # steadier numerics
os.environ["KERAS_BACKEND"] = "tensorflow"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

warnings.filterwarnings("ignore")


@contextlib.contextmanager
def _quiet_native_stderr():
    """Hide C++ start-up chatter that TF 2.21 prints even with
    TF_CPP_MIN_LOG_LEVEL=3 (absl "before InitializeLog" / cudart_stub lines).
    fd 2 is restored before any Python exception propagates."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


import numpy as np  # noqa: E402

with _quiet_native_stderr():
    import tensorflow  # noqa: E402,F401  (load the native libs quietly)
    import keras  # noqa: E402

try:  # quieten absl (used by both Keras versions for "saving as HDF5" notes)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
except ImportError:  # pragma: no cover
    pass
logging.getLogger("tensorflow").setLevel(logging.ERROR)

HERE = Path(__file__).resolve().parent
N_SAMPLES = 16


def out(name):
    return str(HERE / name)


def reset_k3():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def data(*shapes):
    rng = np.random.RandomState(0)
    return [rng.rand(N_SAMPLES, *s).astype("float32") for s in shapes]


# --------------------------------------------------------------------------
# Keras 3
# --------------------------------------------------------------------------
def build_shared_dense():
    """1 + 9a: siamese net, one Dense applied to both inputs."""
    reset_k3()
    left = keras.Input((8,), name="left")
    right = keras.Input((8,), name="right")
    shared = keras.layers.Dense(4, name="shared_dense")
    diff = keras.layers.Subtract(name="diff")([shared(left), shared(right)])
    score = keras.layers.Dense(1, name="score")(diff)
    model = keras.Model([left, right], score, name="siamese")
    model.compile(optimizer="adam", loss="mse")
    a, b, y = data((8,), (8,), (1,))
    model.fit([a, b], y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    model.save(out("shared_dense.keras"))
    model.save(out("shared_dense.h5"))
    model.save_weights(out("shared_dense.weights.h5"))


def build_independent_dense():
    """2: same shape as 1, but two separate (unshared) Dense layers."""
    reset_k3()
    left = keras.Input((8,), name="left")
    right = keras.Input((8,), name="right")
    l_out = keras.layers.Dense(4, name="left_dense")(left)
    r_out = keras.layers.Dense(4, name="right_dense")(right)
    diff = keras.layers.Subtract(name="diff")([l_out, r_out])
    score = keras.layers.Dense(1, name="score")(diff)
    model = keras.Model([left, right], score, name="siamese")
    model.compile(optimizer="adam", loss="mse")
    a, b, y = data((8,), (8,), (1,))
    model.fit([a, b], y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    model.save(out("independent_dense.keras"))


def build_transfer():
    """3: trained base, then a new head on base's `feature` layer.

    Both transfer models reuse the very same trained `feature` layer object.
    The unfrozen one is saved first; then `feature.trainable = False` is set
    and a fresh model is built and saved.
    """
    reset_k3()
    x = keras.Input((8,), name="x")
    h = keras.layers.Dense(6, name="feature")(x)
    y_out = keras.layers.Dense(1, name="base_head")(h)
    base = keras.Model(x, y_out, name="base")
    base.compile(optimizer="adam", loss="mse")
    xs, ys = data((8,), (1,))
    base.fit(xs, ys, epochs=1, batch_size=8, verbose=0, shuffle=False)
    base.save(out("transfer_base.keras"))

    feature = base.get_layer("feature")

    def transfer_model():
        inp = keras.Input((8,), name="transfer_x")
        head = keras.layers.Dense(2, name="new_head")
        return keras.Model(inp, head(feature(inp)), name="transfer")

    assert feature.trainable
    transfer_model().save(out("transfer_unfrozen.keras"))

    feature.trainable = False
    transfer_model().save(out("transfer_frozen.keras"))


def _triplet(freeze):
    reset_k3()
    e_in = keras.Input((6,), name="enc_in")
    e = keras.layers.Dense(5, name="enc_dense")(e_in)
    e = keras.layers.BatchNormalization(name="enc_bn")(e)
    e = keras.layers.Dense(3, name="enc_out")(e)
    encoder = keras.Model(e_in, e, name="encoder")

    anchor = keras.Input((6,), name="anchor")
    positive = keras.Input((6,), name="positive")
    negative = keras.Input((6,), name="negative")
    emb = keras.layers.Concatenate(name="embeddings")(
        [encoder(anchor), encoder(positive), encoder(negative)]
    )
    model = keras.Model([anchor, positive, negative], emb, name="triplet")
    model.compile(optimizer="adam", loss="mse")
    a, p, n, y = data((6,), (6,), (6,), (9,))
    model.fit([a, p, n], y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    if freeze:
        encoder.trainable = False
        encoder.get_layer("enc_out").trainable = True
    return model


def build_nested_encoder():
    """4: triplet net around a nested functional encoder (with BN)."""
    model = _triplet(freeze=False)
    model.save(out("nested_encoder.keras"))
    model.save(out("nested_encoder.h5"))


def build_frozen_encoder():
    """5: as 4, encoder frozen, but enc_out inside it set trainable again."""
    model = _triplet(freeze=True)
    model.save(out("frozen_encoder.keras"))


@keras.saving.register_keras_serializable(package="samples")
class Scorer(keras.Model):
    """Subclassed model: enc -> blocks[0] -> blocks[1] -> head."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.enc = keras.layers.Dense(4, name="enc")
        self.head = keras.layers.Dense(1, name="head")
        self.blocks = [
            keras.layers.Dense(4, name="block_0"),
            keras.layers.Dense(4, name="block_1"),
        ]

    def call(self, inputs):
        h = self.enc(inputs)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def build_subclassed():
    """8: subclassed model with a list attribute of layers."""
    reset_k3()
    model = Scorer(name="scorer")
    model(np.zeros((2, 8), dtype="float32"))
    model.save(out("subclassed.keras"))


def build_mha_keywords():
    """10: one MHA called twice with keyword tensors and different shapes."""
    reset_k3()
    q = keras.Input((5, 8), name="q")
    v = keras.Input((7, 8), name="v")
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="shared_mha")
    proj = keras.layers.Dense(8, name="proj")
    a = mha(query=q, value=v)
    b = mha(query=v, value=q, key=q)
    model = keras.Model([q, v], [proj(a), proj(b)], name="mha_keywords")
    model.save(out("mha_keywords.keras"))


# --------------------------------------------------------------------------
# tf_keras (Keras 2)
# --------------------------------------------------------------------------
def build_k2():
    """6, 7, 9b: Keras 2 siamese net with a shared Dense and a nested tower."""
    with _quiet_native_stderr():
        import tf_keras

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(0)
    L = tf_keras.layers

    t_in = tf_keras.Input((4,), name="tower_in")
    tower = tf_keras.Model(t_in, L.Dense(4, name="tower_dense")(t_in), name="tower")

    left = tf_keras.Input((8,), name="left")
    right = tf_keras.Input((8,), name="right")
    shared = L.Dense(4, name="shared_dense")
    diff = L.Subtract(name="diff")([tower(shared(left)), tower(shared(right))])
    score = L.Dense(1, name="score")(diff)
    model = tf_keras.Model([left, right], score, name="siamese")
    model.compile(optimizer="adam", loss="mse")
    a, b, y = data((8,), (8,), (1,))
    model.fit([a, b], y, epochs=1, batch_size=8, verbose=0, shuffle=False)

    model.save(out("k2_shared.h5"))
    model.save(out("k2_shared.keras"))
    sm_dir = HERE / "k2_savedmodel"
    if sm_dir.exists():
        shutil.rmtree(sm_dir)
    model.save(str(sm_dir), save_format="tf")
    model.save_weights(out("k2_weights_only.h5"))


BUILDERS = [
    build_shared_dense,
    build_independent_dense,
    build_transfer,
    build_nested_encoder,
    build_frozen_encoder,
    build_k2,
    build_subclassed,
    build_mha_keywords,
]

K3_MODELS = [
    "shared_dense.keras",
    "shared_dense.h5",
    "independent_dense.keras",
    "transfer_base.keras",
    "transfer_unfrozen.keras",
    "transfer_frozen.keras",
    "nested_encoder.keras",
    "nested_encoder.h5",
    "frozen_encoder.keras",
    "subclassed.keras",
    "mha_keywords.keras",
]
K2_MODELS = ["k2_shared.h5", "k2_shared.keras", "k2_savedmodel"]
WEIGHTS_ONLY = ["shared_dense.weights.h5", "k2_weights_only.h5"]


def build():
    for fn in BUILDERS:
        fn()


def check():
    """Load every sample back with the Keras that wrote it; return failures."""
    import h5py

    with _quiet_native_stderr():
        import tf_keras

    failures = []

    def attempt(name, loader):
        try:
            model = loader(out(name))
            extra = ""
            if name.startswith("transfer_") and name != "transfer_base.keras":
                extra = f" feature.trainable={model.get_layer('feature').trainable}"
            elif name == "frozen_encoder.keras":
                enc = model.get_layer("encoder")
                extra = (
                    f" encoder.trainable={enc.trainable}"
                    f" enc_out.trainable={enc.get_layer('enc_out').trainable}"
                )
            print(f"ok    {name}{extra}")
        except Exception as exc:  # report, keep going
            failures.append((name, exc))
            print(f"FAIL  {name}: {type(exc).__name__}: {exc}")

    for name in K3_MODELS:
        attempt(name, lambda p: keras.models.load_model(p, compile=False))
    for name in K2_MODELS:
        attempt(name, lambda p: tf_keras.models.load_model(p, compile=False))
    for name in WEIGHTS_ONLY:
        attempt(name, lambda p: h5py.File(p, "r").close())
    return failures


def total_size():
    sizes = {}
    for p in sorted(HERE.rglob("*")):
        if p.is_file() and p.suffix not in (".py", ".md") and "__pycache__" not in p.parts:
            sizes[str(p.relative_to(HERE))] = p.stat().st_size
    return sizes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="load the files back instead of building")
    args = ap.parse_args(argv)
    if args.check:
        failures = check()
        sizes = total_size()
        for name, size in sizes.items():
            print(f"{size:>9,}  {name}")
        print(f"{sum(sizes.values()):>9,}  total")
        return 1 if failures else 0
    build()
    return 0


if __name__ == "__main__":
    sys.exit(main())
