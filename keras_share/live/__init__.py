"""Live mode: inspect Keras models held in memory (Keras 3 or tf_keras), and cross-check files with Keras.

Nothing here imports TensorFlow or Keras at import time: the Keras modules are imported (or found in
``sys.modules``) only when a live object is read. The static path never imports this package's
``flavors``/``reader`` machinery.

* ``reader.read_live`` turns live models into the ``ModelFile`` the static readers produce (format
  ``live``) plus the facts only the objects know; ``report.live_reports`` analyses them.
* ``targets`` holds what the command line needs: ``load_target`` for ``--call package.module:function``
  specs, ``target_reports`` and ``live_file_report`` (``--live``), ``lint_live_report``.
"""
