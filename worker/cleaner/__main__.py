"""`python -m worker.cleaner`."""
import sys

from worker.cleaner.cli import main

sys.exit(main())
