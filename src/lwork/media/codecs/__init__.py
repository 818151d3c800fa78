"""Audio codecs for transcoding carrier legs: G.711 (here, as tables) and AMR-NB (a binding)."""
