"""``python -m keras_mobilenets`` runs the command line."""

import sys

from keras_mobilenets.cli import main

if __name__ == "__main__":  # importing the module (e.g. for the API docs) runs nothing
    sys.exit(main())
