"""Fine-tuning a backbone of the package on a folder of images, as reusable steps.

The workflow (``run_finetune`` runs it end to end, ``keras-mobilenets finetune`` is its
command line and ``examples/finetune_colab.ipynb`` walks through the steps one by one):

1. data: a folder with one sub-folder of images per class (:func:`image_folder_datasets`,
   from ``datasets.image_folders``): every file is decoded once with Pillow before
   training, files that cannot be used are skipped and reported (``strict`` refuses
   them), EXIF orientation, grayscale, CMYK, 16-bit and transparent images are handled;
   or the embedded shapes data written as such a folder (:func:`write_shapes_folder`);
2. augmentation with Keras preprocessing layers inside the ``tf.data`` pipeline
   (:func:`augmentation`, :func:`augment`), so that the model stays a plain network for
   QAT and TFLite;
3. a classifier: a backbone without its top (``weights="imagenet"``, None or a weights
   file) under a new head (:func:`build_classifier`);
4. two phases: the backbone frozen (only the head trains), then unfrozen with a lower
   learning rate (:func:`set_backbone_trainable`, :func:`fit_phase`); every epoch is
   checkpointed and an interrupted phase resumes where it stopped
   (``keras.callbacks.BackupAndRestore``);
5. optionally quantization-aware fine-tuning (``quantization.quantize_model`` with
   calibration images, then :func:`fit_phase` again);
6. optionally int8 TFLite export, run with LiteRT, and a table of accuracy, size and
   latency (``export.compare``);
7. later, the saved files evaluated side by side on labelled images
   (:func:`evaluate_files`, ``keras-mobilenets evaluate``).

Batch normalization: the batch norms of a frozen backbone run in inference mode (Keras
does that for non-trainable BatchNormalization layers), so they keep their statistics.
With pretrained weights they stay frozen when the backbone is unfrozen
(``freeze_batch_norm``), as Keras' transfer-learning guide recommends. When they train
(random initial weights), MobileNetV3's momentum of 0.999 leaves their moving statistics
far from the data after a short training, so they are re-estimated from training images
(``training.reestimate_batch_norm``) before each validation and at the end of the phase.

Modules: :mod:`~keras_mobilenets.finetune.classifier` (model), ``data`` (augmentation),
:mod:`~keras_mobilenets.finetune.phases` (training), ``config``, ``evaluation``,
:mod:`~keras_mobilenets.finetune.file_evaluation` (saved files on labelled images) and
:mod:`~keras_mobilenets.finetune.workflow` (end to end; ``demo.run_demo`` is a preset of it).
The same ``seed`` on the same machine gives the same numbers.

Every step builds and compiles inside the strategy it is given, so the workflow runs under
``tf.distribute`` strategies (see ``keras_mobilenets.distribute``); under a multi-worker
strategy the phases train tf_keras twins of the model (see :func:`fit_phase`).

Example:
    >>> from keras_mobilenets import finetune
    >>> result = finetune.run_finetune(
    ...     "flower_photos", output_dir="flowers_run",
    ...     config=finetune.FineTuneConfig(epochs=3, fine_tune_epochs=3, qat=True),
    ...     export="flowers_int8.tflite")
    >>> print(result.table())
"""

from keras_mobilenets.datasets.image_files import IMAGE_EXTENSIONS, SkippedFile
from keras_mobilenets.datasets.image_folders import (
    ImageFolderScan,
    check_image_folder,
    image_folder_datasets,
    scan_image_folder,
    write_shapes_folder,
)
from keras_mobilenets.finetune.classifier import (
    backbone_of,
    build_classifier,
    builder_accepts,
    set_backbone_trainable,
)
from keras_mobilenets.finetune.config import (
    FineTuneConfig,
    check_backend,
    require_tensorflow_for,
    tensorflow_only_settings,
)
from keras_mobilenets.finetune.data import augment, augmentation, dataset_arrays, take_images
from keras_mobilenets.finetune.evaluation import compare_models
from keras_mobilenets.finetune.file_evaluation import FileEvaluation, evaluate_files
from keras_mobilenets.finetune.phases import OPTIMIZERS, PHASES, PhaseResult, fit_phase
from keras_mobilenets.finetune.workflow import (
    FineTuneResult,
    TrainingData,
    report_to_stdout,
    run_finetune,
    run_workflow,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "OPTIMIZERS",
    "PHASES",
    "FileEvaluation",
    "FineTuneConfig",
    "FineTuneResult",
    "ImageFolderScan",
    "PhaseResult",
    "SkippedFile",
    "TrainingData",
    "augment",
    "augmentation",
    "backbone_of",
    "build_classifier",
    "builder_accepts",
    "check_backend",
    "require_tensorflow_for",
    "tensorflow_only_settings",
    "check_image_folder",
    "compare_models",
    "evaluate_files",
    "dataset_arrays",
    "fit_phase",
    "image_folder_datasets",
    "report_to_stdout",
    "run_finetune",
    "run_workflow",
    "scan_image_folder",
    "set_backbone_trainable",
    "take_images",
    "write_shapes_folder",
]
