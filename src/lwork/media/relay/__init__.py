"""The built-in media relay (`lwork relay`)."""

# First, before any submodule: decides whether the mypyc-compiled modules may be imported.
from lwork.media.relay import compiled as compiled
