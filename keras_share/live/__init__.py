"""Live mode: inspect Keras models held in memory (Keras 3 or tf_keras), and cross-check files with Keras.

Nothing here imports TensorFlow or Keras at import time: the Keras modules are imported (or found in
``sys.modules``) only when a live object is read. The static path never imports this package's
``flavors``/``reader`` machinery.

* ``reader.read_live`` turns live models into the ``ModelFile`` the static readers produce (format
  ``live``) plus the facts only the objects know; ``report.live_reports`` analyses them.
* ``targets`` turns ``--call package.module:function`` specs into models (``load_target``) and reports
  (``target_reports``); ``crosscheck.cross_check`` holds a file's static reading against the model Keras
  loads from it (``--live``); ``digests.LiveDigests`` hashes variables for the weight-comparing checks.
  ``keras_share.pipeline`` calls them and runs the rules.
"""
