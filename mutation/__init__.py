"""Mutation testing: the hand-written catalogues, generated SQL mutants and the coverage map."""

from __future__ import annotations

import sys

# pytest as every mutation run starts it: in order (no random order to tell runs apart) and
# with no cache written into the tree it runs in.
PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider")
