"""Fetching checkpoint files: download, verify, cache.

Files are downloaded with ``keras.utils.get_file`` (progress bar) into
``$KERAS_HOME/models`` (``~/.keras/models`` by default), under their official names.
A download goes to a temporary name first and is moved into place only once verified,
so the cache never holds a half-written or unverified file; a cached file that fails
verification is deleted and fetched again.

The environment variable ``KERAS_MOBILENETS_WEIGHTS_URL`` replaces the base URL of every
checkpoint: a mirror (``https://...``), a test server, or a folder for air-gapped machines
(a plain path such as ``/data/weights`` or a ``file://`` URL); the file names stay the
official ones.
"""

import hashlib
import json
import logging
import os
import pathlib

import h5py

BASE_URL_ENV = "KERAS_MOBILENETS_WEIGHTS_URL"
CACHE_SUBDIR = "models"

logger = logging.getLogger(__name__)


class WeightsDownloadError(OSError):
    """A checkpoint could not be downloaded (offline, unreachable mirror, HTTP error)."""


def cache_dir():
    """The Keras cache folder: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` if
    the home folder is not writable), read at call time."""
    base = os.environ.get("KERAS_HOME")
    if not base:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    return os.path.expanduser(base)


def cache_path(checkpoint):
    """Where ``checkpoint``'s file lives in the cache (whether or not it is there)."""
    return os.path.join(cache_dir(), CACHE_SUBDIR, checkpoint.file_name)


def checkpoint_url(checkpoint):
    """The URL to fetch ``checkpoint`` from, honouring ``KERAS_MOBILENETS_WEIGHTS_URL``.

    Example:
        >>> os.environ["KERAS_MOBILENETS_WEIGHTS_URL"] = "http://mirror.local/weights"
        >>> checkpoint_url(checkpoint)
        'http://mirror.local/weights/weights_mobilenet_v3_small_224_1.0_float.h5'
    """
    base = os.environ.get(BASE_URL_ENV)
    if not base:
        return checkpoint.url
    if "://" not in base:  # a folder on this machine
        base = pathlib.Path(base).expanduser().resolve().as_uri()
    return base.rstrip("/") + "/" + checkpoint.file_name


def file_hash(path, algorithm):
    """Hex digest of the file at ``path`` ("md5" or "sha256")."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def expected_hash(checkpoint):
    """``(algorithm, hex digest)`` to verify ``checkpoint`` with, or ``(None, None)``."""
    if checkpoint.sha256:
        return "sha256", checkpoint.sha256.lower()
    if checkpoint.md5:
        return "md5", checkpoint.md5.lower()
    return None, None


def verify(path, checkpoint):
    """Returns None if the file at ``path`` is ``checkpoint``'s file, else why not.

    With a known hash the file must match it (a sha256 of 8 or more hex digits but fewer
    than 64 is a prefix, as in torchvision's file names); without one it must at least be a
    readable Keras legacy weights file (HDF5 with ``layer_names``), or for a
    ``.safetensors`` checkpoint (timm) start with a valid safetensors header.
    """
    algorithm, expected = expected_hash(checkpoint)
    if algorithm:
        actual = file_hash(path, algorithm)
        # torchvision names its files with the first 8-10 hex digits of their sha256.
        prefix = algorithm == "sha256" and 8 <= len(expected) < len(actual)
        if actual != expected and not (prefix and actual.startswith(expected)):
            return f"its {algorithm} is {actual}, expected {expected}{'...' if prefix else ''}"
        return None
    if checkpoint.file_name.endswith(".safetensors"):
        return _safetensors_problem(path)
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            if not any(key.startswith("layer_names") for key in group.attrs):
                return "it is an HDF5 file but not a Keras weights file (no layer_names)"
    except OSError as error:
        return f"it is not a readable HDF5 file ({error})"
    return None


def _safetensors_problem(path):
    """None if ``path`` starts like a safetensors file (header size, JSON header), else why."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 2 <= size <= 100_000_000 or size + 8 > os.path.getsize(path):
                return "it is not a safetensors file (bad header size)"
            json.loads(f.read(size))
    except (OSError, ValueError) as error:
        return f"it is not a safetensors file ({error})"
    return None


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def fetch(checkpoint):
    """Returns the local path of ``checkpoint``'s file, downloading it if needed.

    Args:
        checkpoint: A :class:`~keras_mobilenets.weights.registry.Checkpoint`.

    Returns:
        The path of the verified file in the Keras cache.

    Raises:
        WeightsDownloadError: If the file is not cached and cannot be downloaded; the
            message names the URL, the file name and where to put the file by hand.
        ValueError: If the downloaded file fails verification (it is deleted).

    Example:
        >>> from keras_mobilenets.weights import registry
        >>> fetch(registry.CHECKPOINTS[0])
        '/home/me/.keras/models/mobilenet_2_5_128_tf.h5'
    """
    import keras

    target = cache_path(checkpoint)
    if os.path.exists(target):
        problem = verify(target, checkpoint)
        if problem is None:
            logger.debug("Using cached %s", target)
            return target
        logger.warning(
            "The cached file %s is corrupt or outdated (%s); fetching it again.", target, problem
        )
        _remove(target)

    url = checkpoint_url(checkpoint)
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    partial_name = f"{checkpoint.file_name}.part{os.getpid()}"
    partial = os.path.join(folder, partial_name)
    try:
        # get_file deletes its target itself when the transfer fails.
        downloaded = keras.utils.get_file(
            fname=partial_name, origin=url, cache_subdir=CACHE_SUBDIR,
            cache_dir=cache_dir(), force_download=True,
        )
    except Exception as error:
        _remove(partial)
        raise WeightsDownloadError(
            f"Could not download the weights file {checkpoint.file_name!r} from {url} "
            f"({error}). If this machine is offline, copy the file {checkpoint.file_name!r} "
            f"(from {checkpoint.url}) to {target}, or put it on a reachable server or "
            f"folder and set {BASE_URL_ENV} to its base URL or folder (e.g. /path/to/folder)."
        ) from error
    try:
        problem = verify(downloaded, checkpoint)
        if problem is not None:
            raise ValueError(
                f"The weights file downloaded from {url} is not {checkpoint.file_name!r}: "
                f"{problem}. The file was deleted; check the URL or the mirror set in "
                f"{BASE_URL_ENV}."
            )
        os.replace(downloaded, target)
    finally:
        _remove(downloaded)
    logger.info("Downloaded %s to %s", url, target)
    return target
