"""What both host plugins share, host-independent and standard library only (bundled with the protocol).

- ``settings``: the server URL and token a painter types, checked and normalized.
- ``params``: generation values checked against the vocabulary's ranges and the server's ``welcome.limits``;
  what a plugin advertises and which kinds/samplers/preview encodings its UI may offer.
- ``regions``: which document region a job sends, and the check that a result fits it.
- ``canvas``: jobs that change the canvas (expand canvas, upscale) and the resolution menu.
- ``naming``: result layer names and the JSON record of a result's parameters (parasite / annotation).
- ``sentences``: a protocol error code turned into a sentence a painter can act on.
- ``reconnect``: the backoff after a dropped connection and its sentences.
- ``transfer``: which encodings a job's pixels travel in (raw on loopback, compressed to a remote server).
- ``jobs``: the event reducer: client events of one job -> host-neutral updates, and decoding of results.
- ``request``: ``JobRequest`` (a job as a host planned it), the checks against the server, its Submit + frames.
- ``session``: ``JobSession``, the jobs of one connection for every host: submit, check, events, results,
  resume and reconnect, sentences.
- ``live``: ``LiveSession``, live painting for a host timer: push the canvas, poll the newest frame.

The host adapters (``plugin_krita``, ``plugin_gimp``) keep only what touches their host: pixels, selection,
layers, progress widgets, dialogs.
"""

from . import canvas, jobs, live, naming, params, reconnect, regions, request, sentences, session, settings, transfer

__all__ = ["canvas", "jobs", "live", "naming", "params", "reconnect", "regions", "request", "sentences", "session",
           "settings", "transfer"]
