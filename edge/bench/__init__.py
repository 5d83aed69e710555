"""Measuring the daemon's loop: what ``fer-edge bench`` and the host's ``fer-convert compare`` share.

``options`` (the command-line options of a measured run; no OpenCV), ``loops`` (the loops, run in
turns) and ``report`` (settings, time shares, advice, the report's text). A library, not a
command: the commands live in ``fer_edge.tools.bench`` and ``fer_convert.compare``.
"""
