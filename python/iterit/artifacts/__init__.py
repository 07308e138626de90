"""Every file iterit writes: its name (here, in one place) and, in the submodules, its reader
and writer. ``names`` is the only place an output file name is spelled."""

from iterit.artifacts.names import *  # noqa: F403
from iterit.artifacts.names import __all__  # noqa: F401
