"""``python -m keras_mobilenets`` runs the command line."""

import sys

from keras_mobilenets.cli import main

sys.exit(main())
