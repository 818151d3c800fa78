"""Media: the ng control protocol (``ng``), the built-in relay (``relay``), how lwork reaches
its relay (``control``) and the minimal SDP both sides of the ng wire exchange (``sdp_min``)."""
