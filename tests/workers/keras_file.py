"""Saves or evaluates a model compiled with CorrelationLoss and the metrics,
on the Keras backend of $KERAS_BACKEND (run as a subprocess by
tests/test_keras_backends.py; prints one JSON line).

    keras_file.py save PATH      # fit one epoch, save PATH, evaluate
    keras_file.py evaluate PATH  # load PATH, evaluate on the same data
"""

import json
import sys

import keras
import numpy as np

import corrops

command, path = sys.argv[1:]
rng = np.random.default_rng(7)
x = rng.normal(size=(24, 16, 3)).astype(np.float32)
y = (np.cumsum(x[..., :1], axis=1) * 0.3 + 0.2 * rng.normal(size=(24, 16, 1))).astype(np.float32)
x[:6, 12:] = 0.0  # padded ends, masked by the Masking layer

if command == "save":
    keras.utils.set_random_seed(5)
    inputs = keras.Input((16, 3))
    hidden = keras.layers.Dense(8, activation="tanh")(keras.layers.Masking(0.0)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(
        optimizer="adam",
        loss=corrops.CorrelationLoss(method="ccc"),
        metrics=[
            corrops.metrics.PearsonCorrelation(),
            corrops.metrics.ConcordanceCorrelation(mode="pooled"),
        ],
    )
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(path)
else:
    model = keras.models.load_model(path)
values = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
print(
    json.dumps(
        {
            "backend": keras.backend.backend(),
            "loss_class": type(model.loss).__name__,
            **{k: float(v) for k, v in values.items()},
        }
    )
)
