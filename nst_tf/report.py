"""`python -m nst_tf.report OUTPUT_DIR`: rebuild a run's contact sheet, loss plot and animation."""

import sys

from nst_tf.app.report import main

if __name__ == "__main__":
    sys.exit(main())
