"""`python -m twin` is the same as the `twin` console script."""

from twin.cli import main

raise SystemExit(main())
