"""rtpengine's ng control protocol from lwork's side: bencode, the UDP transport with its
signed cookies, the client's commands and the statistics they return.

The built-in relay (``lwork.media.relay``) serves the same wire with these codecs.
"""
